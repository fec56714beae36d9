//! The tutorial's practice server, as the sandbox sees it.
//!
//! The app runs a practice server inside itself (outpost-server's `practice` module: the real
//! service on loopback, practice material only) and gives it to the [`Workstation`] as a
//! [`PracticeServerHost`]. A sandbox session connects to nothing else, and only to a server whose
//! health answer says `practice`; a real vault refuses such a server. Going offline stops the
//! practice server listening, so the trainee meets exactly what a dropped connection does; a
//! scripted colleague signs what the trainee signed while offline, so coming back online meets a
//! real signature conflict.

use std::path::Path;
use std::sync::Arc;

use outpost_protocol as wire;
use outpost_vault::{AuditAction, AuditEvent, AuditOutcome};
use zeroize::Zeroizing;

use crate::server_client::ServerClient;
use crate::{Session, Workstation, WorkstationError};

/// How the sandbox signs in to the practice server for one run of it.
pub struct PracticeLogin {
    /// `https://127.0.0.1:PORT`.
    pub base_url: String,
    /// The practice server's HTTPS CA (PEM), pinned.
    pub ca_pem: String,
    /// The trainee's login name there.
    pub username: String,
    /// Their password for this run.
    pub password: Zeroizing<String>,
    /// A single-use recovery code, the second factor for this run.
    pub recovery_code: Zeroizing<String>,
}

/// Practice documents (title, PDF bytes) for a practice server to be seeded with.
pub type PracticeDocuments<'a> = dyn FnMut() -> Result<Vec<(String, Vec<u8>)>, String> + 'a;

/// The practice server the app runs for the tutorial. Errors are the host's own words.
pub trait PracticeServerHost: Send + Sync {
    /// Opens the practice server whose data live in `dir` for `trainee` (made and seeded with
    /// `documents` the first time), not listening yet. Opening the one open already does
    /// nothing; opening another closes that one first.
    fn open(
        &self,
        dir: &Path,
        trainee: &str,
        documents: &mut PracticeDocuments<'_>,
    ) -> Result<(), String>;
    /// Has the open practice server listen; returns how to sign in for this run.
    fn go_online(&self) -> Result<PracticeLogin, String>;
    /// Stops it listening (its data stay).
    fn go_offline(&self);
    /// Closes it (stopping it first): its files are left alone from now on.
    fn close(&self);
    /// Whether it listens now.
    fn is_online(&self) -> bool;
    /// The scripted colleague signs the server document `document_id` on its head, once per
    /// `occasion`. Returns whether they signed now.
    fn colleague_signs(&self, document_id: &str, occasion: &str) -> Result<bool, String>;
}

/// The audit detail of the sandbox going offline and online (practice server stopped, started).
pub(crate) const WENT_OFFLINE: &str = "offline";
pub(crate) const WENT_ONLINE: &str = "online";
/// The practice server stopped because the tutorial was left (or the app ended): offline, but not
/// the trainee's going offline.
pub(crate) const WENT_CLOSED: &str = "closed";

/// What the titles of the practice server's documents end with.
pub const PRACTICE_SERVER_MARK: &str = "practice server · учебный сервер";

/// How long a practice server request may take.
const PRACTICE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Workstation {
    /// Gives the workstation the practice server its tutorials use (the app does, at start).
    /// Without one, the lessons that practise sync cannot be begun.
    pub fn set_practice_server(&self, host: Arc<dyn PracticeServerHost>) {
        let mut slot = self.practice.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(host);
    }

    pub(crate) fn practice_server(&self) -> Option<Arc<dyn PracticeServerHost>> {
        self.practice
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Session {
    fn practice_host(&self) -> Result<&Arc<dyn PracticeServerHost>, WorkstationError> {
        if !self.sandbox {
            return Err(WorkstationError::TrainingBoundary(
                "only the tutorial uses the practice server".into(),
            ));
        }
        self.practice.as_ref().ok_or_else(|| {
            WorkstationError::Tutorial(
                "this app was started without the tutorial's practice server, so lessons about sync cannot be taken here".into(),
            )
        })
    }

    /// Whether the tutorial has a practice server here.
    pub fn has_practice_server(&self) -> bool {
        self.sandbox && self.practice.is_some()
    }

    /// Whether the tutorial's practice server is listening (false outside the tutorial).
    pub fn practice_server_online(&self) -> bool {
        self.practice_host().is_ok_and(|host| host.is_online())
    }

    /// Takes the tutorial online or offline: starts the practice server (made and seeded the
    /// first time) and signs in to it, or stops it. Recorded in the sandbox's audit chain, which
    /// the lessons read. Before going online, the scripted colleague signs each practice
    /// document the trainee signed while offline in the conflict lesson.
    pub fn set_practice_server_online(&self, online: bool) -> Result<(), WorkstationError> {
        let host = self.practice_host()?.clone();
        // One switch at a time: the audit chain must tell the switches in the order they happened.
        let _switching = self
            .practice_switching
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !online {
            host.go_offline();
            return self.record_practice_server(WENT_OFFLINE);
        }
        let failed = |e: String| {
            WorkstationError::Tutorial(format!(
                "the practice server could not start ({e}); try Go online again, or reset the tutorial to make it afresh"
            ))
        };
        let dir = self.vault().paths().dir().join("practice-server");
        let trainee = self.user();
        let pdf = self.pdf.clone();
        let mut documents = move || practice_server_documents(&pdf);
        host.open(&dir, &trainee, &mut documents).map_err(failed)?;
        // Before it listens: the trainee's workstation then meets the colleague's signature.
        self.colleague_reacts(host.as_ref());
        // Recorded first: a sync round may reach the server the moment it listens, and what it
        // brings (a conflict) must come after "online" in the chain the lessons read.
        self.record_practice_server(WENT_ONLINE)?;
        let connected = host
            .go_online()
            .map_err(failed)
            .and_then(|login| self.connect_practice(&login));
        if let Err(error) = connected {
            host.go_offline();
            self.record_practice_server(WENT_OFFLINE)?;
            return Err(error);
        }
        Ok(())
    }

    /// Leaving the tutorial (locking the sandbox) stops the practice server; recorded as closed
    /// (offline, but not the trainee's going offline). Best effort: locking goes on regardless.
    pub(crate) fn leave_practice_server(&self) {
        let Ok(host) = self.practice_host() else {
            return;
        };
        let was_online = host.is_online();
        host.close();
        if was_online {
            if let Err(error) = self.record_practice_server(WENT_CLOSED) {
                tracing::warn!(
                    code = error.code(),
                    "the practice server's closing was not recorded: {error}"
                );
            }
        }
    }

    /// At the tutorial's opening: a practice server the chain says is online was closed when the
    /// app ended without locking the sandbox; recorded so, the chain tells the truth again.
    pub(crate) fn note_practice_server_closed(&self) -> Result<(), WorkstationError> {
        let last = self
            .vault()
            .last_audit_entry_of(AuditAction::PracticeServer)?;
        if last.is_some_and(|e| e.detail == WENT_ONLINE) {
            self.record_practice_server(WENT_CLOSED)?;
        }
        Ok(())
    }

    fn record_practice_server(&self, detail: &str) -> Result<(), WorkstationError> {
        self.vault().append_audit(
            &AuditEvent::new(AuditAction::PracticeServer, AuditOutcome::Success).detail(detail),
        )?;
        Ok(())
    }

    /// Signs in to the practice server (enrolling the sandbox as a device the first time),
    /// having checked that it is one.
    fn connect_practice(&self, login: &PracticeLogin) -> Result<(), WorkstationError> {
        let client = ServerClient::new(&login.base_url, login.ca_pem.as_bytes(), PRACTICE_TIMEOUT)?;
        if !client.health()?.practice {
            return Err(WorkstationError::TrainingBoundary(format!(
                "{} is not the tutorial's practice server; the tutorial connects to nothing else",
                login.base_url
            )));
        }
        self.connect_checked(
            &client,
            &login.base_url,
            &login.ca_pem,
            &login.username,
            &login.password,
            wire::SecondFactor::RecoveryCode {
                code: login.recovery_code.to_string(),
            },
            "Tutorial (practice)",
        )?;
        Ok(())
    }

    /// In the conflict lesson, each practice document the trainee signed while offline is
    /// signed by the colleague on the server too (once per signature).
    /// Best effort: a colleague who cannot sign leaves the trainee without the conflict (the
    /// lesson can be begun again), never without the server.
    fn colleague_reacts(&self, host: &dyn PracticeServerHost) {
        let signed = self
            .lesson_begun_after(crate::tutorial::CONFLICT_LESSON)
            .and_then(|begun| match begun {
                Some(after) => self.signed_while_offline(after),
                None => Ok(Vec::new()),
            })
            .and_then(|signed| Ok((signed, self.vault().server_document_links()?)));
        let (signed, links) = match signed {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(
                    code = error.code(),
                    "the practice colleague cannot look: {error}"
                );
                return;
            }
        };
        for (seq, document) in signed {
            let Some(link) = links.iter().find(|l| l.document_id == document) else {
                continue;
            };
            if let Err(error) = host.colleague_signs(&link.server_id, &format!("signature-{seq}")) {
                tracing::warn!("the practice colleague did not sign: {error}");
            }
        }
    }
}

/// The practice server's own documents: three more practice records, watermarked like every
/// practice document, that reach the sandbox only through sync.
fn practice_server_documents(
    pdf: &outpost_pdf::PdfEngine,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    use outpost_pdf::{Language, SampleKind, SampleSpec};
    let specs = [
        (SampleKind::ProcurementContract, Language::Russian, 9_200),
        (SampleKind::OperationalReport, Language::English, 9_201),
        (SampleKind::PersonnelRecord, Language::English, 9_202),
    ];
    let mut documents = Vec::new();
    for (kind, language, seed) in specs {
        let bytes = pdf
            .write_sample(&SampleSpec {
                kind,
                language,
                pages: 2,
                seed,
                marker: None,
            })
            .map_err(|e| e.to_string())?;
        let stamped = outpost_pdf::stamp_training_watermark(&bytes).map_err(|e| e.to_string())?;
        let info = pdf
            .inspect(Arc::new(stamped.clone()))
            .map_err(|e| e.to_string())?;
        let title = info
            .title()
            .unwrap_or_else(|| "Practice document".to_owned());
        // The trainee tells them from the sandbox's own documents by their titles.
        documents.push((format!("{title} ({PRACTICE_SERVER_MARK})"), stamped));
    }
    Ok(documents)
}
