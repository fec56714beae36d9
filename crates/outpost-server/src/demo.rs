//! Demo data for the embedded default (README's start command): one unit, a user for each role,
//! and the generated sample documents assigned to the unit. Demo only: every demo user has the
//! same published password, so this refuses a server that already has users.

use outpost_protocol::{AssignmentTarget, Role};

use crate::service::{Actor, NewUser, Service, ServiceError};

/// The password of every demo user (README states it).
pub const DEMO_PASSWORD: &str = "outpost-demo";
/// The demo unit.
pub const DEMO_UNIT: &str = "Unit 7";
/// The demo users: login name, display name, role.
pub const DEMO_USERS: [(&str, &str, Role); 4] = [
    ("demo", "Anna Demidova", Role::Supervisor),
    ("colleague", "Pavel Petrov", Role::Staff),
    ("trainee", "Timur Usmanov", Role::Trainee),
    ("admin", "Outpost Administrator", Role::Admin),
];

/// What seeding made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSeed {
    /// Each demo user's TOTP secret (base32), to put in an authenticator app.
    pub totp_secrets: Vec<(String, String)>,
    /// The registered document ids.
    pub documents: Vec<String>,
}

/// Seeds an empty server with the demo unit, users (password [`DEMO_PASSWORD`], TOTP enrolled)
/// and `documents` (title, PDF bytes) assigned to the unit. Returns `None`, changing nothing, if
/// the server has users already.
pub async fn seed_demo(
    service: &Service,
    documents: Vec<(String, Vec<u8>)>,
) -> Result<Option<DemoSeed>, ServiceError> {
    if !service.users().await?.is_empty() {
        return Ok(None);
    }
    service.create_unit(Actor::Cli, DEMO_UNIT).await?;
    let mut totp_secrets = Vec::new();
    for (username, display_name, role) in DEMO_USERS {
        service
            .create_user(
                Actor::Cli,
                NewUser {
                    username: username.into(),
                    display_name: display_name.into(),
                    role,
                    unit: (role != Role::Admin).then(|| DEMO_UNIT.to_string()),
                    password: DEMO_PASSWORD.into(),
                },
            )
            .await?;
        let enrolment = service.enrol_second_factor(Actor::Cli, username).await?;
        totp_secrets.push((username.to_string(), enrolment.secret_base32.clone()));
    }
    let ids = register_for_unit(service, documents, "demo", DEMO_UNIT).await?;
    Ok(Some(DemoSeed {
        totp_secrets,
        documents: ids,
    }))
}

/// Registers `documents` (title, PDF bytes) with `classification` and assigns each to `unit`;
/// returns their ids.
pub(crate) async fn register_for_unit(
    service: &Service,
    documents: Vec<(String, Vec<u8>)>,
    classification: &str,
    unit: &str,
) -> Result<Vec<String>, ServiceError> {
    let mut ids = Vec::new();
    for (title, bytes) in documents {
        let document = service
            .register_document(Actor::Cli, &title, classification, bytes.into())
            .await?;
        service
            .assign(
                Actor::Cli,
                &document.id,
                &AssignmentTarget::Unit { name: unit.into() },
            )
            .await?;
        ids.push(document.id);
    }
    Ok(ids)
}
