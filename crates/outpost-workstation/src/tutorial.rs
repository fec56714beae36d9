//! The tutorial: a sandbox where trainees practise on realistic documents that can never touch
//! real records.
//!
//! The sandbox is a vault of its own kind ([`VaultKind::Sandbox`], under `ROOT/tutorial/USER`):
//! never listed among the users, never opened by a real unlock, and a real vault never opened as
//! one. Its password is a random secret kept in the OS keyring, so a trainee needs none. It is
//! seeded with practice documents that carry the "TRAINING" watermark on every page and a marker
//! in their catalog (a real vault refuses any document with that marker), and a training signing
//! key whose certificate — issued by a training CA made for this sandbox alone — says
//! "TRAINING — NOT VALID" in its subject. A real vault refuses training certificates and training
//! CAs; the sandbox refuses real ones, hardware tokens and servers.
//!
//! Lessons are lists of steps; each step is checked against the engine's state — the audit
//! chain after the point where the lesson began (a position in the chain, never a wall-clock
//! time), the annotations and signatures of the documents, what the viewer shows — not against
//! clicks. Progress is kept in the sandbox after each step.

use std::str::FromStr;
use std::sync::Arc;

use der::{Decode, Encode};
use outpost_pdf::{AnnotationKind, Certificate, SampleKind, SampleSpec, SignatureKind};
use outpost_vault::{AuditEntry, LessonRecord, Vault, VaultKind, VaultPaths};
use serde::Serialize;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use crate::{DocumentId, KeyAlgorithm, Session, SharedRng, Workstation, WorkstationError};

/// What every training certificate says in its subject (and the training CA in its own).
pub const TRAINING_MARK: &str = "TRAINING — NOT VALID";

/// The common name of each sandbox's training CA.
const TRAINING_CA_NAME: &str = "Outpost Training CA — TRAINING — NOT VALID";

/// Why the real vault opens the sandbox (recorded with that unlock in the sandbox's chain).
const READ_PROGRESS: &str = "opened by the real vault to read the tutorial progress";

/// The sandbox's password is 256 random bits: stretching it adds nothing, so it is derived with
/// light parameters (at most these) and opening the sandbox costs no noticeable time.
const SANDBOX_KDF: outpost_vault::KdfParams = outpost_vault::KdfParams {
    m_cost_kib: 8 * 1024,
    t_cost: 1,
    p_cost: 1,
};

/// The label of the trainee's training key.
pub const TRAINING_KEY_LABEL: &str = "Training key";

/// Whether a certificate belongs to the tutorial (its subject or its issuer carries the mark).
pub(crate) fn is_training_certificate(certificate: &Certificate) -> bool {
    let tbs = &certificate.tbs_certificate;
    tbs.subject.to_string().contains(TRAINING_MARK)
        || tbs.issuer.to_string().contains(TRAINING_MARK)
}

/// The keyring account holding a sandbox's random password.
fn password_account(user: &str) -> String {
    format!("outpost-tutorial-password:{user}")
}

fn tutorial_error(what: &str, e: impl std::fmt::Display) -> WorkstationError {
    WorkstationError::Tutorial(format!("{what}: {e}"))
}

/// The practice documents every sandbox starts with: each kind of record in Russian and
/// English, and two more operational reports so that batch signing has enough to sign.
pub fn practice_documents() -> Vec<SampleSpec> {
    let mut specs = Vec::new();
    for (i, kind) in SampleKind::ALL.into_iter().enumerate() {
        for (j, language) in [
            outpost_pdf::Language::Russian,
            outpost_pdf::Language::English,
        ]
        .into_iter()
        .enumerate()
        {
            specs.push(SampleSpec {
                kind,
                language,
                pages: 3 + (i as u32 + j as u32) % 2,
                seed: 9_000 + (i * 2 + j) as u64,
                marker: None,
            });
        }
    }
    for (seed, language) in [
        (9_100, outpost_pdf::Language::Russian),
        (9_101, outpost_pdf::Language::English),
    ] {
        specs.push(SampleSpec {
            kind: SampleKind::OperationalReport,
            language,
            // Three pages at least: scrolled to its end, page 1 leaves the view.
            pages: 3,
            seed,
            marker: None,
        });
    }
    specs
}

/// One step of a lesson, and what the engine must show for it to be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A document was opened.
    OpenDocument,
    /// The viewer was moved on to page 2 or later of an open document.
    GoToLaterPage,
    /// A search found something.
    SearchWithHits,
    /// A document was opened after that search.
    OpenSearchHit,
    /// A highlight was made in the lesson (and its document still has one).
    AddHighlight,
    /// A sticky note was made after it (and its document still has one).
    AddNote,
    /// A document signed in the lesson validates.
    SignDocument,
    /// A batch signed three documents (or more), each of which validates.
    SignThreeInBatch,
    /// The vault was locked.
    Lock,
    /// And unlocked again.
    Unlock,
    /// A document with a valid signature was opened.
    OpenSignedDocument,
    /// Its signatures were validated and at least one is valid.
    ReadValidation,
    /// The practice server was taken offline.
    GoOffline,
    /// While offline, an annotation was made on a document that came from the practice server.
    WorkOffline,
    /// While offline, a document that came from the practice server was signed (and validates).
    SignOffline,
    /// The practice server was taken online again.
    ComeOnline,
    /// Online, nothing of the practice server's documents waits to be sent any more.
    SyncBack,
    /// The conflict was met (the colleague's revision taken, the trainee's set aside), the
    /// document signed again on the new head, and that signature reached the server.
    SignAgainOnNewHead,
}

impl Step {
    fn id(self) -> &'static str {
        match self {
            Self::OpenDocument => "open_document",
            Self::GoToLaterPage => "go_to_later_page",
            Self::SearchWithHits => "search_with_hits",
            Self::OpenSearchHit => "open_search_hit",
            Self::AddHighlight => "add_highlight",
            Self::AddNote => "add_note",
            Self::SignDocument => "sign_document",
            Self::SignThreeInBatch => "sign_three_in_batch",
            Self::Lock => "lock",
            Self::Unlock => "unlock",
            Self::OpenSignedDocument => "open_signed_document",
            Self::ReadValidation => "read_validation",
            Self::GoOffline => "go_offline",
            Self::WorkOffline => "work_offline",
            Self::SignOffline => "sign_offline",
            Self::ComeOnline => "come_online",
            Self::SyncBack => "sync_back",
            Self::SignAgainOnNewHead => "sign_again_on_new_head",
        }
    }
}

/// The lesson in which the trainee meets a signature conflict (the practice colleague signs what
/// the trainee signed offline).
pub(crate) const CONFLICT_LESSON: &str = "resolve_conflict";

/// A lesson: its id (the UI's catalogue holds its title and the explanation of each step), its
/// steps in order, and whether it needs the practice server.
struct Lesson {
    id: &'static str,
    steps: &'static [Step],
    needs_server: bool,
}

const LESSONS: &[Lesson] = &[
    Lesson {
        id: "open_and_navigate",
        steps: &[Step::OpenDocument, Step::GoToLaterPage],
        needs_server: false,
    },
    Lesson {
        id: "search",
        steps: &[Step::SearchWithHits, Step::OpenSearchHit],
        needs_server: false,
    },
    Lesson {
        id: "highlight_and_note",
        steps: &[Step::AddHighlight, Step::AddNote],
        needs_server: false,
    },
    Lesson {
        id: "sign_one",
        steps: &[Step::SignDocument],
        needs_server: false,
    },
    Lesson {
        id: "batch_sign",
        steps: &[Step::SignThreeInBatch],
        needs_server: false,
    },
    Lesson {
        id: "offline_and_sync",
        steps: &[
            Step::GoOffline,
            Step::WorkOffline,
            Step::ComeOnline,
            Step::SyncBack,
        ],
        needs_server: true,
    },
    Lesson {
        id: CONFLICT_LESSON,
        steps: &[
            Step::GoOffline,
            Step::SignOffline,
            Step::ComeOnline,
            Step::SignAgainOnNewHead,
        ],
        needs_server: true,
    },
    Lesson {
        id: "lock_and_unlock",
        steps: &[Step::Lock, Step::Unlock],
        needs_server: false,
    },
    Lesson {
        id: "validation_panel",
        steps: &[Step::OpenSignedDocument, Step::ReadValidation],
        needs_server: false,
    },
];

/// A step as the trainee sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepProgress {
    /// The step's id (the UI's catalogue explains it).
    pub id: String,
    /// Whether it is done.
    pub done: bool,
}

/// A lesson as the trainee sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LessonProgress {
    /// The lesson's id (the UI's catalogue names it).
    pub id: String,
    /// Its steps in order.
    pub steps: Vec<StepProgress>,
    /// Whether it was begun.
    pub started: bool,
    /// Whether every step is done.
    pub completed: bool,
    /// Whether it can be begun here: lessons that practise sync need the practice server, which
    /// the app runs (a workstation without one offers the other lessons).
    pub available: bool,
}

/// The whole tutorial at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TutorialSummary {
    /// Lessons completed.
    pub lessons_completed: usize,
    /// Lessons that can be taken here.
    pub lessons_available: usize,
    /// Steps done over every lesson.
    pub steps_done: usize,
    /// Steps of the lessons that can be taken here.
    pub steps_total: usize,
    /// Whether every available lesson is completed.
    pub complete: bool,
}

/// Why the tutorial's real vault opens for a moment (recorded with that unlock in its chain).
const PROVE_FOR_TUTORIAL: &str = "opened to prove who opens the tutorial";

impl Workstation {
    /// Opens the tutorial of `user`, who has no real vault on this workstation (a newcomer
    /// practising before real work): see [`Workstation::open_tutorial_as`]. A user with a real
    /// vault here proves who they are first — their progress goes to their supervisor under
    /// their name — with [`Workstation::open_tutorial_with_password`] or
    /// [`Workstation::open_tutorial_from`].
    pub fn open_tutorial(&self, user: &str, rng: SharedRng) -> Result<Session, WorkstationError> {
        if VaultPaths::new(self.data_root(), user)?.exists() {
            return Err(WorkstationError::TutorialNeedsPassword(user.to_owned()));
        }
        self.open_tutorial_as(user, rng)
    }

    /// Opens the tutorial of `user` after checking their real vault's password (the check is
    /// recorded in that vault's chain). A wrong password opens nothing.
    pub fn open_tutorial_with_password(
        &self,
        user: &str,
        password: &str,
        rng: SharedRng,
    ) -> Result<Session, WorkstationError> {
        let paths = VaultPaths::new(self.data_root(), user)?;
        if !paths.exists() {
            // A newcomer who typed something anyway: there is nothing to prove.
            return self.open_tutorial_as(user, rng);
        }
        let proof = Vault::open_for(
            &paths,
            password,
            self.keyring(),
            self.clock(),
            PROVE_FOR_TUTORIAL,
        )?;
        drop(proof);
        self.open_tutorial_as(user, rng)
    }

    /// Opens the tutorial of the user whose real vault `session` has unlocked (the caller then
    /// locks that session: the sandbox and a real vault are not worked in together).
    pub fn open_tutorial_from(
        &self,
        session: &Session,
        rng: SharedRng,
    ) -> Result<Session, WorkstationError> {
        if session.is_sandbox() {
            return Err(WorkstationError::Tutorial(
                "this is the tutorial already".into(),
            ));
        }
        self.open_tutorial_as(&session.user(), rng)
    }

    /// Opens `user`'s tutorial sandbox, making it the first time: a vault of the sandbox kind
    /// with the practice documents (watermarked) and a training signing key. Opening again
    /// resumes where the trainee left off (and finishes seeding a sandbox a crash interrupted).
    fn open_tutorial_as(&self, user: &str, rng: SharedRng) -> Result<Session, WorkstationError> {
        let _one_at_a_time = self
            .tutorial_opening
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let paths = VaultPaths::sandbox(self.data_root(), user)?;
        let keyring = self.keyring();
        let account = password_account(user);
        let vault = if paths.exists() {
            self.open_sandbox(&paths, "")?
        } else {
            let password = {
                let mut secret = zeroize::Zeroizing::new([0u8; 32]);
                rng.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .fill_bytes(secret.as_mut());
                zeroize::Zeroizing::new(hex::encode(secret.as_ref()))
            };
            keyring
                .store(&account, password.as_bytes())
                .map_err(|e| tutorial_error("the OS keyring refused the tutorial's key", e))?;
            let mut guard = rng.lock().unwrap_or_else(|p| p.into_inner());
            let kdf = if self.kdf().m_cost_kib > SANDBOX_KDF.m_cost_kib {
                SANDBOX_KDF
            } else {
                self.kdf()
            };
            Vault::create(&paths, &password, kdf, keyring, self.clock(), &mut *guard)?
        };
        let mut session = Session::new(vault, self.pdf().clone(), rng);
        session.practice = self.practice_server();
        session.seed_practice_material()?;
        session.note_practice_server_closed()?;
        Ok(session)
    }

    /// Opens the sandbox at `paths` with its password from the keyring, for `purpose` (empty when
    /// the trainee opens it).
    fn open_sandbox(&self, paths: &VaultPaths, purpose: &str) -> Result<Vault, WorkstationError> {
        let password = self
            .keyring()
            .load(&password_account(paths.user()))
            .map_err(|e| tutorial_error("the OS keyring cannot be read", e))?
            .ok_or_else(|| {
                WorkstationError::Tutorial(format!(
                    "the tutorial's key is missing from the OS keyring, so its practice vault cannot be opened; remove the folder {} (it holds only practice material) to start the tutorial afresh",
                    paths.dir().display()
                ))
            })?;
        let password = zeroize::Zeroizing::new(String::from_utf8_lossy(&password).into_owned());
        Ok(Vault::open_for(
            paths,
            &password,
            self.keyring(),
            self.clock(),
            purpose,
        )?)
    }

    /// `user`'s progress in the tutorial, read from their sandbox (none without one): what the
    /// real vault sends to the server, and all that leaves the sandbox.
    pub fn tutorial_progress(
        &self,
        user: &str,
    ) -> Result<Option<outpost_protocol::TrainingProgress>, WorkstationError> {
        let paths = VaultPaths::sandbox(self.data_root(), user)?;
        if !paths.exists() {
            return Ok(None);
        }
        let vault = self.open_sandbox(&paths, READ_PROGRESS)?;
        Ok(Some(progress_record(&vault)?))
    }

    /// Whether `user` has a tutorial sandbox here.
    pub fn has_tutorial(&self, user: &str) -> Result<bool, WorkstationError> {
        Ok(VaultPaths::sandbox(self.data_root(), user)?.exists())
    }

    /// Removes `user`'s tutorial sandbox and its keyring entries, so the next opening starts the
    /// tutorial afresh. Real vaults are not touched.
    pub fn reset_tutorial(&self, user: &str) -> Result<(), WorkstationError> {
        let paths = VaultPaths::sandbox(self.data_root(), user)?;
        if let Some(host) = self.practice_server() {
            // Its files are about to go.
            host.close();
        }
        let keyring = self.keyring();
        if let Ok(key_file) = outpost_vault::KeyFile::read(&paths.key_file()) {
            keyring
                .delete(key_file.keyring_account())
                .map_err(|e| tutorial_error("the OS keyring refused to forget the tutorial", e))?;
        }
        keyring
            .delete(&password_account(user))
            .map_err(|e| tutorial_error("the OS keyring refused to forget the tutorial", e))?;
        match std::fs::remove_dir_all(paths.dir()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(WorkstationError::Io {
                path: paths.dir().to_owned(),
                source,
            }),
        }
    }
}

impl Session {
    /// Whether this session is the tutorial's sandbox.
    pub fn is_sandbox(&self) -> bool {
        self.sandbox
    }

    /// Refuses hardware tokens in the tutorial before any is opened: they hold real keys, and a
    /// PIN typed while practising must never count against a real card.
    pub fn refuse_tokens_in_tutorial(&self) -> Result<(), WorkstationError> {
        if self.sandbox {
            Err(WorkstationError::TrainingBoundary(
                "the tutorial never opens a hardware token: tokens hold real keys. Practise with the training key".into(),
            ))
        } else {
            Ok(())
        }
    }

    fn require_sandbox(&self) -> Result<(), WorkstationError> {
        if self.sandbox {
            Ok(())
        } else {
            Err(WorkstationError::TrainingBoundary(
                "lessons run only in the tutorial's practice vault, never in a real one".into(),
            ))
        }
    }

    /// Refuses a certificate on the wrong side of the tutorial's boundary: a training
    /// certificate in a real vault, a real one in the sandbox.
    pub(crate) fn check_certificate_side(
        &self,
        certificate: &Certificate,
    ) -> Result<(), WorkstationError> {
        let subject = certificate.tbs_certificate.subject.to_string();
        match (self.sandbox, is_training_certificate(certificate)) {
            (false, true) => Err(WorkstationError::TrainingBoundary(format!(
                "'{subject}' is a certificate of the tutorial: it is not valid for real work and cannot be used outside the tutorial"
            ))),
            (true, false) => Err(WorkstationError::TrainingBoundary(format!(
                "'{subject}' is a real certificate: the tutorial signs only with its training certificate, so real keys and tokens stay out of practice"
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses a practice document in a real vault; in the sandbox, stamps a document with the
    /// watermark (once) so that every page shown or exported there carries it.
    /// Refuses, in a real vault, a document whose pages carry the tutorial's banner line: a
    /// practice document rewritten by some tool (its catalog marker compressed or dropped) is
    /// still recognised by its text.
    pub(crate) fn check_page_texts_for_this_side(
        &self,
        page_texts: &[String],
    ) -> Result<(), WorkstationError> {
        let squeeze = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let banner = squeeze(outpost_pdf::TRAINING_BANNER);
        if !self.sandbox && page_texts.iter().any(|t| squeeze(t).contains(&banner)) {
            return Err(WorkstationError::Rejected {
                reason: "this is a practice document of the Outpost tutorial (its pages say TRAINING COPY); practice documents never enter a real vault".into(),
            });
        }
        Ok(())
    }

    pub(crate) fn bytes_for_this_side(&self, bytes: Vec<u8>) -> Result<Vec<u8>, WorkstationError> {
        if self.sandbox {
            outpost_pdf::stamp_training_watermark(&bytes).map_err(crate::error::classify_pdf_error)
        } else if outpost_pdf::is_training_document(&bytes) {
            Err(WorkstationError::Rejected {
                reason: "this is a practice document of the Outpost tutorial (marked TRAINING); practice documents never enter a real vault".into(),
            })
        } else {
            Ok(bytes)
        }
    }

    /// Imports the practice documents and makes the training key, whichever of them is missing.
    fn seed_practice_material(&self) -> Result<(), WorkstationError> {
        if self.vault().kind()? != VaultKind::Sandbox {
            return Err(WorkstationError::TrainingBoundary(
                "practice material goes only into the tutorial's practice vault".into(),
            ));
        }
        let specs = practice_documents();
        // Whatever a crash left out (the same bytes twice are one document).
        if self.documents()?.len() < specs.len() {
            for spec in specs {
                let bytes = self
                    .pdf
                    .write_sample(&spec)
                    .map_err(WorkstationError::Engine)?;
                let name = format!("practice-{}.pdf", spec.seed);
                self.import_bytes(bytes, &name)?;
            }
        }
        let keys = self.signing_keys()?;
        let certified = keys.iter().any(|k| k.subject.is_some());
        if !certified {
            let key = match keys.into_iter().next() {
                Some(key) => key,
                None => self.create_signing_key(
                    TRAINING_KEY_LABEL,
                    KeyAlgorithm::EcdsaP256,
                    &format!("{} — {TRAINING_MARK}", self.user()),
                )?,
            };
            self.issue_training_certificate(&key.id)?;
        }
        Ok(())
    }

    /// Makes this sandbox's training CA, has it certify `key_id`, trusts it, and forgets its key:
    /// nothing else can ever be certified by it.
    fn issue_training_certificate(&self, key_id: &str) -> Result<(), WorkstationError> {
        let failed = |e: &dyn std::fmt::Display| tutorial_error("the training certificate", e);
        let now_ms = self.now_ms();
        let at = |ms: i64| -> Result<Time, WorkstationError> {
            let seconds = u64::try_from(ms / 1000).unwrap_or(0);
            der::asn1::GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(seconds))
                .map(Time::GeneralTime)
                .map_err(|e| failed(&e))
        };
        const DAY_MS: i64 = 86_400_000;
        let validity = Validity {
            not_before: at(now_ms - DAY_MS)?,
            not_after: at(now_ms + 5 * 365 * DAY_MS)?,
        };
        let serial = |session: &Session| -> Result<SerialNumber, WorkstationError> {
            let mut bytes = session.new_uuid().into_bytes();
            bytes[0] &= 0x7f;
            SerialNumber::new(&bytes).map_err(|e| failed(&e))
        };
        let ca_key = p256::ecdsa::SigningKey::random(&mut *self.rng());
        let ca_name = Name::from_str(&format!("CN={TRAINING_CA_NAME},O=Outpost Tutorial"))
            .map_err(|e| failed(&e))?;
        let ca_spki =
            SubjectPublicKeyInfoOwned::from_key(*ca_key.verifying_key()).map_err(|e| failed(&e))?;
        let ca_certificate = CertificateBuilder::new(
            Profile::Root,
            serial(self)?,
            validity,
            ca_name.clone(),
            ca_spki,
            &ca_key,
        )
        .map_err(|e| failed(&e))?
        .build::<p256::ecdsa::DerSignature>()
        .map_err(|e| failed(&e))?;
        let record = self.key_record(key_id)?;
        let request =
            x509_cert::request::CertReq::from_der(&record.request).map_err(|e| failed(&e))?;
        let spki =
            SubjectPublicKeyInfoOwned::from_der(&record.public_key).map_err(|e| failed(&e))?;
        let certificate = CertificateBuilder::new(
            Profile::Leaf {
                issuer: ca_name,
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            serial(self)?,
            validity,
            request.info.subject,
            spki,
            &ca_key,
        )
        .map_err(|e| failed(&e))?
        .build::<p256::ecdsa::DerSignature>()
        .map_err(|e| failed(&e))?;
        drop(ca_key);
        let ca_der = ca_certificate.to_der().map_err(|e| failed(&e))?;
        // Trusted first: a crash between the two leaves an uncertified key, certified afresh at
        // the next opening — never a certificate whose signatures could not validate.
        self.add_trust_anchor(&ca_der)?;
        self.import_certificates(key_id, vec![certificate, ca_certificate])?;
        Ok(())
    }

    /// Keeps `progress` (read from this user's sandbox) to send to the server with the next push,
    /// numbered by this real vault; the same progress as the last one queued or sent is not sent
    /// again. Returns whether it was queued.
    pub fn queue_training_progress(
        &self,
        progress: &outpost_protocol::TrainingProgress,
    ) -> Result<bool, WorkstationError> {
        let content = outpost_protocol::TrainingProgress {
            sequence: 0,
            ..progress.clone()
        };
        let json = serde_json::to_string(&content).map_err(|e| {
            tutorial_error(
                "the tutorial progress could not be written down; nothing was queued",
                e,
            )
        })?;
        let op_id = self.new_uuid().to_string();
        Ok(self
            .vault()
            .queue_training_progress(&op_id, &json)?
            .is_some())
    }

    /// Every lesson with its progress, in the order they are taught.
    pub fn lessons(&self) -> Result<Vec<LessonProgress>, WorkstationError> {
        self.require_sandbox()?;
        let records = self.vault().lessons()?;
        let server = self.has_practice_server();
        Ok(LESSONS
            .iter()
            .map(|lesson| {
                progress_of(
                    lesson,
                    records.iter().find(|r| r.lesson == lesson.id),
                    server,
                )
            })
            .collect())
    }

    /// Begins `lesson` (again, if it was begun before: its steps start over). What counts for
    /// it is what the trainee does from now on.
    pub fn start_lesson(&self, lesson: &str) -> Result<LessonProgress, WorkstationError> {
        self.require_sandbox()?;
        let spec = lesson_spec(lesson)?;
        if spec.needs_server {
            if !self.has_practice_server() {
                return Err(WorkstationError::Tutorial(format!(
                    "the lesson '{lesson}' practises sync and needs the tutorial's practice server, which this app was started without; take the other lessons"
                )));
            }
            // The lesson begins online, with the practice server's documents here.
            self.set_practice_server_online(true)?;
            self.sync_pull(&std::sync::atomic::AtomicBool::new(false), &mut |_| {})?;
        }
        self.vault().start_lesson(lesson)?;
        self.check_lesson(lesson)
    }

    /// Checks the engine's state for the next steps of `lesson`, records the steps found done
    /// (each once) and returns the lesson's progress.
    pub fn check_lesson(&self, lesson: &str) -> Result<LessonProgress, WorkstationError> {
        self.require_sandbox()?;
        let spec = lesson_spec(lesson)?;
        let record = self
            .vault()
            .lessons()?
            .into_iter()
            .find(|r| r.lesson == lesson)
            .ok_or_else(|| {
                WorkstationError::Tutorial(format!(
                    "the lesson '{lesson}' was not begun; begin it first"
                ))
            })?;
        let entries = self.audit_after(record.started_after_seq)?;
        let mut from = 0;
        for (index, step) in spec.steps.iter().enumerate() {
            let already = record.steps_done.iter().any(|s| s == step.id());
            match self.evidence(*step, &entries, from)? {
                Some(next) => from = next,
                None if already => {}
                None => break,
            }
            if !already {
                let last = index + 1 == spec.steps.len();
                let recorded = self.vault().complete_lesson_step(
                    lesson,
                    record.started_after_seq,
                    step.id(),
                    last,
                )?;
                if !recorded {
                    // Begun again meanwhile: its new beginning is checked next time.
                    break;
                }
            }
        }
        let record = self.vault().lessons()?;
        Ok(progress_of(
            spec,
            record.iter().find(|r| r.lesson == lesson),
            self.has_practice_server(),
        ))
    }

    /// The tutorial at a glance: what is done of the lessons that can be taken here.
    pub fn tutorial_summary(&self) -> Result<TutorialSummary, WorkstationError> {
        let lessons = self.lessons()?;
        let available: Vec<&LessonProgress> = lessons.iter().filter(|l| l.available).collect();
        let lessons_completed = available.iter().filter(|l| l.completed).count();
        Ok(TutorialSummary {
            lessons_completed,
            lessons_available: available.len(),
            steps_done: available
                .iter()
                .map(|l| l.steps.iter().filter(|s| s.done).count())
                .sum(),
            steps_total: available.iter().map(|l| l.steps.len()).sum(),
            complete: lessons_completed == available.len(),
        })
    }

    /// Every audit entry after `seq`, oldest first.
    fn audit_after(&self, seq: i64) -> Result<Vec<AuditEntry>, WorkstationError> {
        let mut entries = Vec::new();
        let mut after = seq;
        loop {
            let page = self.vault().audit_entries(after, 500)?;
            let Some(last) = page.last() else {
                return Ok(entries);
            };
            after = last.seq;
            entries.extend(page);
        }
    }

    /// Where the evidence for `step` is among `entries` (looking from index `from`): the index
    /// after which the next step's evidence must come, or `None` when the step is not done.
    fn evidence(
        &self,
        step: Step,
        entries: &[AuditEntry],
        from: usize,
    ) -> Result<Option<usize>, WorkstationError> {
        let any = |_: &AuditEntry| Ok(true);
        let validates = |e: &AuditEntry| self.entry_document_validates(e);
        let nth =
            |action,
             count,
             from,
             accept: &dyn Fn(&AuditEntry) -> Result<bool, WorkstationError>| {
                nth_entry(entries, from, action, count, accept)
            };
        match step {
            Step::OpenDocument | Step::OpenSearchHit => nth("view", 1, from, &any),
            Step::Lock => nth("lock", 1, from, &any),
            // The trainee's own unlock, not the real vault reading the progress.
            Step::Unlock => nth("unlock", 1, from, &|e| Ok(e.detail.is_empty())),
            Step::GoToLaterPage => Ok(self.viewer_past_first_page().then_some(from)),
            Step::SearchWithHits => nth("search", 1, from, &|e| Ok(search_hits(&e.detail) > 0)),
            Step::AddHighlight | Step::AddNote => {
                let kind = if step == Step::AddHighlight {
                    AnnotationKind::Highlight
                } else {
                    AnnotationKind::Note
                };
                let created = format!("created {} on page", kind.as_str().replace('_', " "));
                nth("annotate", 1, from, &|e| {
                    let Some(document) = &e.document_id else {
                        return Ok(false);
                    };
                    Ok(e.detail.starts_with(&created)
                        && self
                            .annotations(&DocumentId(document.clone()))?
                            .iter()
                            .any(|a| a.annotation.kind == kind))
                })
            }
            Step::SignDocument => nth("sign", 1, from, &validates),
            Step::SignThreeInBatch => {
                let mut batch_from = from;
                while let Some(after_batch) = nth("sign_batch", 1, batch_from, &any)? {
                    if let Some(done) = nth("sign", 3, after_batch, &validates)? {
                        return Ok(Some(done));
                    }
                    batch_from = after_batch;
                }
                Ok(None)
            }
            Step::OpenSignedDocument => nth("view", 1, from, &validates),
            Step::ReadValidation => nth("validate", 1, from, &validates),
            Step::GoOffline | Step::ComeOnline => {
                let wanted = if step == Step::GoOffline {
                    crate::practice::WENT_OFFLINE
                } else {
                    crate::practice::WENT_ONLINE
                };
                nth("practice_server", 1, from, &|e| Ok(e.detail == wanted))
            }
            Step::WorkOffline => self.while_offline(entries, from, "annotate", &|e| {
                Ok(e.detail.starts_with("created"))
            }),
            Step::SignOffline => self.while_offline(entries, from, "sign", &validates),
            Step::SyncBack => {
                let waiting = self
                    .document_sync_states()?
                    .iter()
                    // A revision the server refused waits for the trainee's decision, not for sync.
                    .any(|s| {
                        s.refused.is_none()
                            && (s.pending_annotations > 0 || s.pending_revisions > 0)
                    });
                Ok((self.practice_server_online() && !waiting).then_some(from))
            }
            Step::SignAgainOnNewHead => self.signed_again_on_new_head(entries, from),
        }
    }

    /// The index after the first `action` entry from `from` that `accept` takes, made while the
    /// practice server was offline, on a document that came from it. Whether it was offline is
    /// read from the `practice_server` entries before it (online at the lesson's beginning).
    fn while_offline(
        &self,
        entries: &[AuditEntry],
        from: usize,
        action: &str,
        accept: &dyn Fn(&AuditEntry) -> Result<bool, WorkstationError>,
    ) -> Result<Option<usize>, WorkstationError> {
        let links = self.vault().server_document_links()?;
        let from_server = |e: &AuditEntry| {
            e.document_id
                .as_ref()
                .is_some_and(|d| links.iter().any(|l| &l.document_id.0 == d))
        };
        let mut offline = false;
        for (index, entry) in entries.iter().enumerate() {
            if entry.action == "practice_server" {
                offline = entry.detail != crate::practice::WENT_ONLINE;
            } else if index >= from
                && offline
                && entry.action == action
                && entry.outcome == "success"
                && from_server(entry)
                && accept(entry)?
            {
                return Ok(Some(index + 1));
            }
        }
        Ok(None)
    }

    /// The conflict met (a `sync_revision` entry asking for the signature again), then a
    /// signature of that document that validates, and now nothing of it waits and it is not
    /// asked for again: that signature is on the server's head.
    fn signed_again_on_new_head(
        &self,
        entries: &[AuditEntry],
        from: usize,
    ) -> Result<Option<usize>, WorkstationError> {
        let states = self.document_sync_states()?;
        for (index, conflict) in entries.iter().enumerate().skip(from) {
            let Some(document) = &conflict.document_id else {
                continue;
            };
            if conflict.action != "sync_revision"
                || !conflict.detail.ends_with(outpost_vault::SIGN_AGAIN)
            {
                continue;
            }
            let signed_again = nth_entry(entries, index + 1, "sign", 1, &|e| {
                Ok(e.document_id.as_ref() == Some(document) && self.entry_document_validates(e)?)
            })?;
            let Some(after) = signed_again else {
                continue;
            };
            // In step with the server (not purged, nothing waiting, refused or to sign again).
            let settled = states.iter().any(|s| {
                &s.document_id.0 == document
                    && s.standing == outpost_vault::DocumentStanding::Synced
            });
            if settled && self.practice_server_online() {
                return Ok(Some(after));
            }
        }
        Ok(None)
    }

    /// When the lesson `lesson` was begun (its position in the audit chain), if it is in hand.
    pub(crate) fn lesson_begun_after(&self, lesson: &str) -> Result<Option<i64>, WorkstationError> {
        Ok(self
            .vault()
            .lessons()?
            .into_iter()
            .find(|r| r.lesson == lesson && r.completed_at_ms.is_none())
            .map(|r| r.started_after_seq))
    }

    /// The practice-server documents signed while it was offline, after audit position `after`:
    /// (the signature's audit position, the local document).
    pub(crate) fn signed_while_offline(
        &self,
        after: i64,
    ) -> Result<Vec<(i64, DocumentId)>, WorkstationError> {
        let entries = self.audit_after(after)?;
        let mut signed = Vec::new();
        let mut from = 0;
        while let Some(next) = self.while_offline(&entries, from, "sign", &|_| Ok(true))? {
            if let Some((entry, Some(document))) = entries
                .get(next - 1)
                .map(|entry| (entry, entry.document_id.as_ref()))
            {
                signed.push((entry.seq, DocumentId(document.clone())));
            }
            from = next;
        }
        Ok(signed)
    }

    /// Whether the document an audit entry names has a signature that validates.
    fn entry_document_validates(&self, entry: &AuditEntry) -> Result<bool, WorkstationError> {
        let Some(document) = &entry.document_id else {
            return Ok(false);
        };
        let reports = match self.validate_document_quietly(&DocumentId(document.clone())) {
            Ok(reports) => reports,
            // Purged or unreadable since: not evidence.
            Err(_) => return Ok(false),
        };
        Ok(reports
            .iter()
            .any(|r| r.kind == SignatureKind::Signature && r.status.is_valid()))
    }
}

/// The index just after the `count`-th successful `action` entry from index `from` that `accept`
/// takes, if there are that many.
fn nth_entry(
    entries: &[AuditEntry],
    from: usize,
    action: &str,
    count: usize,
    accept: &dyn Fn(&AuditEntry) -> Result<bool, WorkstationError>,
) -> Result<Option<usize>, WorkstationError> {
    let mut found = 0;
    for (index, entry) in entries.iter().enumerate().skip(from) {
        if entry.action == action && entry.outcome == "success" && accept(entry)? {
            found += 1;
            if found == count {
                return Ok(Some(index + 1));
            }
        }
    }
    Ok(None)
}

/// The progress record of a sandbox: lesson ids and counts, ordered by the sandbox's audit
/// position. Nothing of the practice documents, notes or signatures is in it.
fn progress_record(vault: &Vault) -> Result<outpost_protocol::TrainingProgress, WorkstationError> {
    let records = vault.lessons()?;
    // Every lesson: the app that sends this record runs the practice server too.
    let lessons: Vec<LessonProgress> = LESSONS
        .iter()
        .map(|lesson| progress_of(lesson, records.iter().find(|r| r.lesson == lesson.id), true))
        .collect();
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(outpost_protocol::TrainingProgress {
        // The real vault gives the sequence when it queues the record.
        sequence: 0,
        lessons_completed: count(lessons.iter().filter(|l| l.completed).count()),
        lessons_available: count(lessons.len()),
        lessons: lessons
            .into_iter()
            .map(|l| outpost_protocol::LessonRecord {
                steps_done: count(l.steps.iter().filter(|s| s.done).count()),
                steps_total: count(l.steps.len()),
                completed: l.completed,
                lesson: l.id,
            })
            .collect(),
    })
}

/// The number of hits an audited search reported (its detail ends "N hits").
fn search_hits(detail: &str) -> usize {
    detail
        .rsplit(": ")
        .next()
        .and_then(|tail| tail.strip_suffix(" hits"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn lesson_spec(id: &str) -> Result<&'static Lesson, WorkstationError> {
    LESSONS.iter().find(|l| l.id == id).ok_or_else(|| {
        WorkstationError::Tutorial(format!("there is no lesson '{id}' in this tutorial"))
    })
}

fn progress_of(lesson: &Lesson, record: Option<&LessonRecord>, server: bool) -> LessonProgress {
    let done = |id: &str| record.is_some_and(|r| r.steps_done.iter().any(|s| s == id));
    let steps: Vec<StepProgress> = lesson
        .steps
        .iter()
        .map(|s| StepProgress {
            id: s.id().to_owned(),
            done: done(s.id()),
        })
        .collect();
    let available = !lesson.needs_server || server;
    LessonProgress {
        id: lesson.id.to_owned(),
        completed: available && record.is_some_and(|r| r.completed_at_ms.is_some()),
        started: record.is_some(),
        steps,
        available,
    }
}

/// The sandbox-side facts a workstation shares with the tutorial.
impl Workstation {
    fn keyring(&self) -> &dyn outpost_vault::DeviceSecretStore {
        self.config().keyring.as_ref()
    }

    fn clock(&self) -> Arc<dyn outpost_vault::Clock> {
        self.config().clock.clone()
    }

    fn kdf(&self) -> outpost_vault::KdfParams {
        self.config().kdf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_hits_are_read_from_the_audited_detail() {
        assert_eq!(search_hits("query 'договор': 3 hits"), 3);
        assert_eq!(search_hits("query 'a: b': 12 hits"), 12);
        assert_eq!(search_hits("query 'x': 0 hits"), 0);
        assert_eq!(search_hits("query 'x': bad query"), 0);
    }
}
