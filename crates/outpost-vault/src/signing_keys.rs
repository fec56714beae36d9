//! Signing keys, their certificates, and the organisation's trust anchors. Private keys are stored
//! only inside the encrypted database (PKCS #8 DER) and leave it only into memory to sign.

use rusqlite::OptionalExtension;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::audit::{self, AuditAction, AuditEvent, AuditOutcome};
use crate::{Vault, VaultError};

/// A signing key as listed (never with its private part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigningKeyRecord {
    /// Id (a UUID).
    pub id: String,
    /// What the user calls it.
    pub label: String,
    /// `ecdsa_p256` or `rsa_3072`.
    pub algorithm: String,
    /// SubjectPublicKeyInfo, DER.
    #[serde(skip)]
    pub public_key: Vec<u8>,
    /// The certificate signing request, DER.
    #[serde(skip)]
    pub request: Vec<u8>,
    /// The issued certificate, DER, once imported.
    #[serde(skip)]
    pub certificate: Option<Vec<u8>>,
    /// Its chain (issuer first), DER each.
    #[serde(skip)]
    pub chain: Vec<Vec<u8>>,
    /// When it was made.
    pub created_at_ms: i64,
    /// When its certificate was asked of the organisation's CA through sync, if it was.
    pub certificate_requested_at_ms: Option<i64>,
    /// Why the CA refused the request, if it did.
    pub certificate_refusal: Option<String>,
}

impl SigningKeyRecord {
    /// Whether its certificate request waits to be sent with the next sync.
    pub fn certificate_request_waits(&self) -> bool {
        self.certificate.is_none()
            && self.certificate_requested_at_ms.is_some()
            && self.certificate_refusal.is_none()
    }
}

/// A new key to store.
#[derive(Debug)]
pub struct NewSigningKey<'a> {
    /// Id.
    pub id: &'a str,
    /// Label.
    pub label: &'a str,
    /// `ecdsa_p256` or `rsa_3072`.
    pub algorithm: &'a str,
    /// PKCS #8 DER.
    pub private_key: &'a [u8],
    /// SubjectPublicKeyInfo DER.
    pub public_key: &'a [u8],
    /// PKCS #10 DER.
    pub request: &'a [u8],
}

fn chain_to_json(chain: &[Vec<u8>]) -> String {
    serde_json::to_string(&chain.iter().map(hex::encode).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

fn chain_from_json(text: &str) -> Vec<Vec<u8>> {
    serde_json::from_str::<Vec<String>>(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|h| hex::decode(h).ok())
        .collect()
}

impl Vault {
    fn key_audit(
        &mut self,
        event: AuditEvent,
        write: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        write(&tx)?;
        audit::append(&tx, now, &self.user, &event)?;
        tx.commit()?;
        Ok(())
    }

    /// Stores a newly generated key with its request (audited).
    pub fn store_signing_key(&mut self, key: &NewSigningKey<'_>) -> Result<(), VaultError> {
        let now = self.clock.now_ms();
        self.key_audit(
            AuditEvent::new(AuditAction::KeyManagement, AuditOutcome::Success).detail(format!(
                "created {} signing key '{}' ({})",
                key.algorithm, key.label, key.id
            )),
            |tx| {
                tx.execute(
                    "INSERT INTO signing_keys (id, label, algorithm, private_key, public_key, request, created_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    rusqlite::params![key.id, key.label, key.algorithm, key.private_key, key.public_key, key.request, now],
                )?;
                Ok(())
            },
        )
    }

    /// The signing keys, oldest first.
    pub fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, VaultError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, label, algorithm, public_key, request, certificate, chain, created_at_ms,
                    certificate_requested_at_ms, certificate_refusal
             FROM signing_keys ORDER BY rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(SigningKeyRecord {
                id: r.get(0)?,
                label: r.get(1)?,
                algorithm: r.get(2)?,
                public_key: r.get(3)?,
                request: r.get(4)?,
                certificate: r.get(5)?,
                chain: chain_from_json(&r.get::<_, String>(6)?),
                created_at_ms: r.get(7)?,
                certificate_requested_at_ms: r.get(8)?,
                certificate_refusal: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A key's private part (PKCS #8 DER), wiped from memory when dropped.
    pub fn signing_key_private(&self, id: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.conn
            .query_row(
                "SELECT private_key FROM signing_keys WHERE id = ?1",
                [id],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
            .map(Zeroizing::new)
            .ok_or_else(|| VaultError::SigningKeyNotFound(id.to_owned()))
    }

    /// Stores the certificate issued for a key, and its chain (audited).
    pub fn set_signing_certificate(
        &mut self,
        id: &str,
        certificate: &[u8],
        chain: &[Vec<u8>],
        subject: &str,
    ) -> Result<(), VaultError> {
        let id_owned = id.to_owned();
        self.key_audit(
            AuditEvent::new(AuditAction::KeyManagement, AuditOutcome::Success).detail(format!(
                "imported the certificate '{subject}' for signing key {id}"
            )),
            move |tx| {
                let changed = tx.execute(
                    "UPDATE signing_keys SET certificate = ?1, chain = ?2 WHERE id = ?3",
                    rusqlite::params![certificate, chain_to_json(chain), id_owned],
                )?;
                if changed == 0 {
                    return Err(VaultError::SigningKeyNotFound(id_owned));
                }
                Ok(())
            },
        )
    }

    /// Asks for key `id`'s certificate through sync: the request waits until a sync sends it
    /// (an earlier refusal is forgotten; audited).
    pub fn queue_certificate_request(&mut self, id: &str) -> Result<(), VaultError> {
        let now = self.clock.now_ms();
        let id_owned = id.to_owned();
        self.key_audit(
            AuditEvent::new(AuditAction::KeyManagement, AuditOutcome::Success).detail(format!(
                "asked the organisation's CA for a certificate for signing key {id}"
            )),
            move |tx| {
                let changed = tx.execute(
                    "UPDATE signing_keys SET certificate_requested_at_ms = ?1, certificate_refusal = NULL
                     WHERE id = ?2",
                    rusqlite::params![now, id_owned],
                )?;
                if changed == 0 {
                    return Err(VaultError::SigningKeyNotFound(id_owned));
                }
                Ok(())
            },
        )
    }

    /// Records that the CA refused key `id`'s certificate request, and why: it no longer waits
    /// (audited).
    pub fn refuse_certificate_request(&mut self, id: &str, reason: &str) -> Result<(), VaultError> {
        let id_owned = id.to_owned();
        let reason_owned = reason.to_owned();
        self.key_audit(
            AuditEvent::new(AuditAction::KeyManagement, AuditOutcome::Failure).detail(format!(
                "the organisation's CA refused a certificate for signing key {id}: {reason}"
            )),
            move |tx| {
                tx.execute(
                    "UPDATE signing_keys SET certificate_refusal = ?1 WHERE id = ?2",
                    rusqlite::params![reason_owned, id_owned],
                )?;
                Ok(())
            },
        )
    }

    /// How many certificate requests wait to be sent
    /// ([`SigningKeyRecord::certificate_request_waits`]).
    pub fn waiting_certificate_requests(&self) -> Result<usize, VaultError> {
        Ok(self
            .signing_keys()?
            .iter()
            .filter(|key| key.certificate_request_waits())
            .count())
    }

    /// Adds a trust anchor (an organisation root, DER) by its SHA-256; adding it again is a no-op
    /// (audited).
    pub fn add_trust_anchor(
        &mut self,
        sha256: &str,
        certificate: &[u8],
        subject: &str,
    ) -> Result<(), VaultError> {
        let now = self.clock.now_ms();
        self.key_audit(
            AuditEvent::new(AuditAction::KeyManagement, AuditOutcome::Success)
                .detail(format!("trusted the root '{subject}' ({sha256})")),
            |tx| {
                tx.execute(
                    "INSERT OR IGNORE INTO trust_anchors (sha256, certificate, subject, added_at_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![sha256, certificate, subject, now],
                )?;
                Ok(())
            },
        )
    }

    /// The trust anchors (DER), oldest first.
    pub fn trust_anchors(&self) -> Result<Vec<Vec<u8>>, VaultError> {
        let mut stmt = self
            .conn
            .prepare("SELECT certificate FROM trust_anchors ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keeps `der` as the organisation's newest revocation list, fetched when the server counted
    /// `revoked_count` revoked certificates (audited).
    pub fn store_revocation_list(
        &mut self,
        der: &[u8],
        revoked_count: u64,
    ) -> Result<(), VaultError> {
        let now = self.clock.now_ms();
        let count = i64::try_from(revoked_count).unwrap_or(i64::MAX);
        self.key_audit(
            AuditEvent::new(AuditAction::KeyManagement, AuditOutcome::Success).detail(format!(
                "took the organisation's revocation list ({revoked_count} revoked certificate(s))"
            )),
            |tx| {
                tx.execute(
                    "INSERT INTO revocation_list (id, der, revoked_count, fetched_at_ms)
                     VALUES (1, ?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET der = ?1, revoked_count = ?2, fetched_at_ms = ?3",
                    rusqlite::params![der, count, now],
                )?;
                Ok(())
            },
        )
    }

    /// The organisation's newest revocation list (DER) and the revoked count it was fetched at.
    pub fn revocation_list(&self) -> Result<Option<(Vec<u8>, u64)>, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT der, revoked_count FROM revocation_list WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()?
            .map(|(der, count)| (der, u64::try_from(count).unwrap_or(0))))
    }
}
