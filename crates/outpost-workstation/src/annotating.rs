//! Annotating: create, edit and delete annotations, undo and redo the user's own recent changes,
//! and export a copy of a document with its annotations burned in (the one way plaintext leaves
//! the vault, audited).
//!
//! Every change is a new revision of one annotation record, written with its audit entry in one
//! transaction. Undo and redo are changes too (a new revision restoring an earlier content), so
//! they sync like any edit and never rewrite history.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use outpost_pdf::{burn_in, Annotation, AnnotationKind, Colour, Geometry};
use outpost_vault::{AnnotationRecord, AnnotationWrite, AuditAction, AuditEvent, AuditOutcome};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{DocumentId, Session, WorkstationError};

/// How many changes per document can be undone.
const UNDO_DEPTH: usize = 100;

/// How an annotation looks and what it says; what is absent takes the kind's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnnotationStyle {
    /// Its colour; yellow for highlights and notes, red otherwise, when absent.
    #[serde(default)]
    pub colour: Option<Colour>,
    /// Its text.
    #[serde(default)]
    pub contents: String,
    /// Stroke width in points; 2 when absent.
    #[serde(default)]
    pub line_width: Option<f32>,
    /// Free-text font size in points; 12 when absent.
    #[serde(default)]
    pub font_size: Option<f32>,
}

/// A new annotation as the user drew it. Identity, author and times are the engine's to assign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotationDraft {
    /// What it is.
    pub kind: AnnotationKind,
    /// Its page, 1-based.
    pub page: u32,
    /// Where it is, in user space.
    pub geometry: Geometry,
    /// How it looks and what it says.
    #[serde(flatten)]
    pub style: AnnotationStyle,
}

/// A change to an annotation: each field present replaces the current one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnnotationEdit {
    /// New place or shape.
    #[serde(default)]
    pub geometry: Option<Geometry>,
    /// New colour.
    #[serde(default)]
    pub colour: Option<Colour>,
    /// New text.
    #[serde(default)]
    pub contents: Option<String>,
    /// New stroke width.
    #[serde(default)]
    pub line_width: Option<f32>,
    /// New font size.
    #[serde(default)]
    pub font_size: Option<f32>,
}

/// An annotation with its record's revision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAnnotation {
    /// The annotation.
    #[serde(flatten)]
    pub annotation: Annotation,
    /// Its revision in the vault.
    pub revision: i64,
    /// Burned into a signed revision of the document: part of the PDF now, no longer editable.
    pub burned: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// The file written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub byte_size: u64,
    /// Its SHA-256, lower-case hex (recorded in the audit chain).
    pub sha256: String,
    /// How many annotations were burned in.
    pub annotations: usize,
}

/// One undoable change: the annotation's content before and after it.
#[derive(Debug, Clone)]
struct Step {
    id: String,
    label: String,
    older: Content,
    newer: Content,
}

#[derive(Debug, Clone)]
struct Content {
    body: String,
    deleted: bool,
}

/// The undo and redo stacks of one document, and the revision this session last wrote to each
/// annotation: undo and redo apply only while the record is still at that revision, so a change
/// that arrived from elsewhere (sync) is never silently overwritten.
#[derive(Debug, Default)]
pub(crate) struct EditHistory {
    undo: Vec<Step>,
    redo: Vec<Step>,
    written: HashMap<String, i64>,
}

/// Undo and redo stacks per document, for this session only.
pub(crate) type Histories = HashMap<DocumentId, EditHistory>;

fn describe(annotation: &Annotation) -> String {
    format!(
        "{} on page {}",
        annotation.kind.as_str().replace('_', " "),
        annotation.page
    )
}

fn parse(record: &AnnotationRecord) -> Result<Annotation, WorkstationError> {
    serde_json::from_str(&record.body).map_err(|e| WorkstationError::CorruptAnnotation {
        id: record.id.clone(),
        reason: e.to_string(),
    })
}

fn json(annotation: &Annotation) -> String {
    // Serialising plain data with string keys cannot fail.
    serde_json::to_string(annotation).unwrap_or_default()
}

/// Where "save a copy with annotations" proposes to write: `$OUTPOST_EXPORT_DIR`, else
/// `~/Documents` if it exists, else the home folder; the name is the title made safe for a file
/// name, with "-annotated.pdf".
pub fn suggested_export_path(title: &str) -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let folder = std::env::var_os("OUTPOST_EXPORT_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            home.as_ref()
                .map(|h| h.join("Documents"))
                .filter(|d| d.is_dir())
        })
        .or(home)
        .unwrap_or_else(|| PathBuf::from("."));
    let safe: String = title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let safe = safe.trim().trim_start_matches('.');
    let stem = if safe.is_empty() { "document" } else { safe };
    folder.join(format!("{stem}-annotated.pdf"))
}

impl Session {
    /// The document's annotations (not deleted), in page order.
    pub fn annotations(
        &self,
        document: &DocumentId,
    ) -> Result<Vec<StoredAnnotation>, WorkstationError> {
        let records = self.vault().annotations(document, false)?;
        records
            .iter()
            .map(|r| {
                Ok(StoredAnnotation {
                    annotation: parse(r)?,
                    revision: r.revision,
                    burned: r.burned_revision.is_some(),
                })
            })
            .collect()
    }

    /// Creates an annotation on `document` by this session's user (audited, undoable).
    pub fn create_annotation(
        &self,
        document: &DocumentId,
        draft: AnnotationDraft,
    ) -> Result<StoredAnnotation, WorkstationError> {
        let summary = self.document(document)?;
        if draft.page == 0 || draft.page > summary.page_count {
            return Err(WorkstationError::Engine(
                outpost_pdf::PdfError::PageOutOfRange {
                    page: draft.page,
                    page_count: summary.page_count,
                },
            ));
        }
        let now = self.now_ms();
        let annotation = Annotation {
            id: self.new_uuid(),
            kind: draft.kind,
            page: draft.page,
            geometry: draft.geometry,
            colour: draft.style.colour.unwrap_or(match draft.kind {
                AnnotationKind::Highlight | AnnotationKind::Note => Colour::YELLOW,
                _ => Colour::RED,
            }),
            contents: draft.style.contents,
            author: self.user(),
            created_ms: now,
            modified_ms: now,
            line_width: draft.style.line_width.unwrap_or(2.0),
            font_size: draft.style.font_size.unwrap_or(12.0),
        };
        annotation.validate().map_err(WorkstationError::Engine)?;
        let body = json(&annotation);
        let record = self.change(
            document,
            &annotation,
            None,
            Content {
                body: body.clone(),
                deleted: true,
            },
            Content {
                body,
                deleted: false,
            },
            format!("created {}", describe(&annotation)),
        )?;
        Ok(StoredAnnotation {
            annotation,
            revision: record.revision,
            burned: false,
        })
    }

    /// Changes one of this user's annotations (audited, undoable). `revision` is the revision the
    /// user saw; if it changed since, nothing is written.
    pub fn edit_annotation(
        &self,
        id: &str,
        revision: i64,
        edit: AnnotationEdit,
    ) -> Result<StoredAnnotation, WorkstationError> {
        let (record, mut annotation) = self.own_annotation(id)?;
        let before = record.body.clone();
        if let Some(geometry) = edit.geometry {
            annotation.geometry = geometry;
        }
        if let Some(colour) = edit.colour {
            annotation.colour = colour;
        }
        if let Some(contents) = edit.contents {
            annotation.contents = contents;
        }
        if let Some(width) = edit.line_width {
            annotation.line_width = width;
        }
        if let Some(size) = edit.font_size {
            annotation.font_size = size;
        }
        annotation.modified_ms = self.now_ms();
        annotation.validate().map_err(WorkstationError::Engine)?;
        let stored = self.change(
            &record.document_id,
            &annotation,
            Some(revision),
            Content {
                body: before,
                deleted: false,
            },
            Content {
                body: json(&annotation),
                deleted: false,
            },
            format!("edited {}", describe(&annotation)),
        )?;
        Ok(StoredAnnotation {
            annotation,
            revision: stored.revision,
            burned: false,
        })
    }

    /// Deletes one of this user's annotations: it becomes a tombstone, so the deletion syncs and
    /// can be undone (audited, undoable).
    pub fn delete_annotation(&self, id: &str, revision: i64) -> Result<(), WorkstationError> {
        let (record, annotation) = self.own_annotation(id)?;
        self.change(
            &record.document_id,
            &annotation,
            Some(revision),
            Content {
                body: record.body.clone(),
                deleted: false,
            },
            Content {
                body: record.body,
                deleted: true,
            },
            format!("deleted {}", describe(&annotation)),
        )?;
        Ok(())
    }

    /// Undoes this session's most recent annotation change on `document` and returns what was
    /// undone. Refused, and the step dropped, if the annotation changed since (by sync, say).
    pub fn undo_annotation(&self, document: &DocumentId) -> Result<String, WorkstationError> {
        self.replay(document, true)
    }

    /// Redoes the change most recently undone on `document` and returns what was redone.
    pub fn redo_annotation(&self, document: &DocumentId) -> Result<String, WorkstationError> {
        self.replay(document, false)
    }

    fn replay(&self, document: &DocumentId, undo: bool) -> Result<String, WorkstationError> {
        let (step, revision) = {
            let mut histories = self.histories();
            let history = histories.entry(document.clone()).or_default();
            let stack = if undo {
                &mut history.undo
            } else {
                &mut history.redo
            };
            let step = stack.pop().ok_or(if undo {
                WorkstationError::NothingToUndo
            } else {
                WorkstationError::NothingToRedo
            })?;
            let revision = history.written.get(&step.id).copied();
            (step, revision)
        };
        let target = if undo { &step.older } else { &step.newer };
        let annotation: Annotation = serde_json::from_str(&target.body).map_err(|e| {
            WorkstationError::CorruptAnnotation {
                id: step.id.clone(),
                reason: e.to_string(),
            }
        })?;
        let label = format!("{}: {}", if undo { "undid" } else { "redid" }, step.label);
        let written = self.write(
            document,
            &annotation,
            &target.body,
            target.deleted,
            revision,
            label.clone(),
        );
        let record = match written {
            Ok(record) => record,
            Err(WorkstationError::Vault(outpost_vault::VaultError::AnnotationChanged {
                ..
            })) => {
                // Someone else changed it since: this step no longer applies.
                return Err(WorkstationError::UndoOutdated { label: step.label });
            }
            Err(other) => {
                self.push_back(document, step, undo);
                return Err(other);
            }
        };
        let mut histories = self.histories();
        let history = histories.entry(document.clone()).or_default();
        history.written.insert(step.id.clone(), record.revision);
        if undo {
            history.redo.push(step);
        } else {
            history.undo.push(step);
        }
        Ok(label)
    }

    /// Writes `newer` over `older` (expected at `revision`) and remembers the change for undo.
    fn change(
        &self,
        document: &DocumentId,
        annotation: &Annotation,
        revision: Option<i64>,
        older: Content,
        newer: Content,
        label: String,
    ) -> Result<AnnotationRecord, WorkstationError> {
        let record = self.write(
            document,
            annotation,
            &newer.body,
            newer.deleted,
            revision,
            label.clone(),
        )?;
        self.remember(
            document,
            Step {
                id: record.id.clone(),
                label,
                older,
                newer,
            },
            record.revision,
        );
        Ok(record)
    }

    fn push_back(&self, document: &DocumentId, step: Step, undo: bool) {
        let mut histories = self.histories();
        let history = histories.entry(document.clone()).or_default();
        if undo {
            history.undo.push(step);
        } else {
            history.redo.push(step);
        }
    }

    /// Records a new change that left the annotation at `revision`: it can be undone, and
    /// nothing undone before can be redone.
    fn remember(&self, document: &DocumentId, step: Step, revision: i64) {
        let mut histories = self.histories();
        let history = histories.entry(document.clone()).or_default();
        history.written.insert(step.id.clone(), revision);
        history.redo.clear();
        history.undo.push(step);
        if history.undo.len() > UNDO_DEPTH {
            history.undo.remove(0);
        }
    }

    fn own_annotation(&self, id: &str) -> Result<(AnnotationRecord, Annotation), WorkstationError> {
        let record = self
            .vault()
            .annotation(id)?
            .filter(|r| !r.deleted)
            .ok_or_else(|| WorkstationError::AnnotationNotFound(id.to_owned()))?;
        if record.burned_revision.is_some() {
            return Err(WorkstationError::AnnotationSigned(id.to_owned()));
        }
        let user = self.user();
        if record.author != user {
            return Err(WorkstationError::NotYourAnnotation {
                id: id.to_owned(),
                author: record.author,
            });
        }
        let annotation = parse(&record)?;
        Ok((record, annotation))
    }

    fn write(
        &self,
        document: &DocumentId,
        annotation: &Annotation,
        body: &str,
        deleted: bool,
        expected_revision: Option<i64>,
        audit_detail: String,
    ) -> Result<AnnotationRecord, WorkstationError> {
        let id = annotation.id.to_string();
        Ok(self.vault().write_annotation(&AnnotationWrite {
            id: &id,
            document_id: document,
            page_no: annotation.page,
            kind: annotation.kind.as_str(),
            author: &annotation.author,
            body,
            deleted,
            expected_revision,
            audit_detail,
        })?)
    }

    /// Saves a copy of `document` with its annotations burned in (an incremental update: the
    /// original bytes stay an exact prefix) to `destination`, which must not exist yet. This is
    /// the one way plaintext leaves the vault; it is recorded in the audit chain, failures too.
    pub fn export_with_annotations(
        &self,
        document: &DocumentId,
        destination: &Path,
    ) -> Result<ExportReport, WorkstationError> {
        let result = self.write_export(document, destination);
        let (outcome, detail) = match &result {
            Ok(report) => (
                AuditOutcome::Success,
                format!(
                    "saved a copy with {} annotations to '{}' (sha256 {})",
                    report.annotations,
                    destination.display(),
                    report.sha256
                ),
            ),
            Err(e) => (
                AuditOutcome::Failure,
                format!("copy to '{}' failed: {e}", destination.display()),
            ),
        };
        self.vault().append_audit(
            &AuditEvent::new(AuditAction::Export, outcome)
                .document(document.0.clone())
                .detail(detail),
        )?;
        result
    }

    fn write_export(
        &self,
        document: &DocumentId,
        destination: &Path,
    ) -> Result<ExportReport, WorkstationError> {
        let bytes = self.vault().document_bytes(document)?;
        // Annotations burned into a signed revision are in the bytes already.
        let annotations: Vec<Annotation> = self
            .annotations(document)?
            .into_iter()
            .filter(|a| !a.burned)
            .map(|a| a.annotation)
            .collect();
        let burned = if annotations.is_empty() {
            bytes
        } else {
            burn_in(&bytes, &annotations, &outpost_pdf::sample_font_path())
                .map_err(WorkstationError::Engine)?
        };
        if destination.exists() {
            return Err(WorkstationError::ExportTargetExists(destination.to_owned()));
        }
        let name = destination
            .file_name()
            .ok_or_else(|| WorkstationError::ExportTargetExists(destination.to_owned()))?;
        let partial =
            destination.with_file_name(format!(".{}.outpost-partial", name.to_string_lossy()));
        let written = (|| {
            let mut file = std::fs::File::create_new(&partial)?;
            file.write_all(&burned)?;
            file.sync_all()?;
            // A hard link never replaces a file that appeared meanwhile; file systems without
            // links (FAT on a USB stick) get a rename after the check above.
            match std::fs::hard_link(&partial, destination) {
                Ok(()) => std::fs::remove_file(&partial),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
                Err(_) => std::fs::rename(&partial, destination),
            }
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(WorkstationError::io(destination, e));
        }
        Ok(ExportReport {
            path: destination.to_owned(),
            byte_size: burned.len() as u64,
            sha256: hex::encode(Sha256::digest(&burned)),
            annotations: annotations.len(),
        })
    }
}
