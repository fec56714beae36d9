//! The tutorial's progress, kept only in sandbox vaults: which lessons began (as a position in the
//! audit chain, so "what the trainee did in this lesson" never depends on a wall clock) and which
//! of their steps are done.

use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::{Vault, VaultError, VaultKind};

/// One lesson's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LessonRecord {
    /// The lesson's id.
    pub lesson: String,
    /// The audit chain's last entry when the lesson (last) began: what the trainee did in the
    /// lesson comes after it.
    pub started_after_seq: i64,
    /// When every step was done (ms since the epoch), if it was.
    pub completed_at_ms: Option<i64>,
    /// The steps done, in the order they were done.
    pub steps_done: Vec<String>,
}

impl Vault {
    fn require_sandbox(&self) -> Result<(), VaultError> {
        match self.kind()? {
            VaultKind::Sandbox => Ok(()),
            VaultKind::Real => Err(VaultError::NotSandbox),
        }
    }

    /// Begins `lesson` (again): its steps are forgotten and what counts for it is what comes after
    /// the audit chain's current end. Returns that position.
    pub fn start_lesson(&mut self, lesson: &str) -> Result<i64, VaultError> {
        self.require_sandbox()?;
        let tx = self.conn.transaction()?;
        let last_seq: i64 =
            tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM audit_log", [], |r| {
                r.get(0)
            })?;
        tx.execute("DELETE FROM tutorial_lessons WHERE lesson = ?1", [lesson])?;
        tx.execute(
            "INSERT INTO tutorial_lessons (lesson, started_after_seq) VALUES (?1, ?2)",
            (lesson, last_seq),
        )?;
        bump_progress_version(&tx)?;
        tx.commit()?;
        Ok(last_seq)
    }

    /// Records that `step` of a begun `lesson` is done (once; doing it again changes nothing) and,
    /// when `lesson_complete`, that the lesson is. Returns whether the step was new.
    pub fn complete_lesson_step(
        &mut self,
        lesson: &str,
        step: &str,
        lesson_complete: bool,
    ) -> Result<bool, VaultError> {
        self.require_sandbox()?;
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        let begun: Option<i64> = tx
            .query_row(
                "SELECT started_after_seq FROM tutorial_lessons WHERE lesson = ?1",
                [lesson],
                |r| r.get(0),
            )
            .optional()?;
        if begun.is_none() {
            return Err(VaultError::LessonNotStarted(lesson.to_owned()));
        }
        let added = tx.execute(
            "INSERT OR IGNORE INTO tutorial_steps (lesson, step, completed_at_ms) VALUES (?1, ?2, ?3)",
            (lesson, step, now),
        )?;
        if added > 0 {
            bump_progress_version(&tx)?;
        }
        if lesson_complete {
            tx.execute(
                "UPDATE tutorial_lessons SET completed_at_ms = COALESCE(completed_at_ms, ?2) WHERE lesson = ?1",
                (lesson, now),
            )?;
        }
        tx.commit()?;
        Ok(added > 0)
    }

    /// Every begun lesson's progress.
    pub fn lessons(&self) -> Result<Vec<LessonRecord>, VaultError> {
        self.require_sandbox()?;
        let mut lessons = self.conn.prepare(
            "SELECT lesson, started_after_seq, completed_at_ms FROM tutorial_lessons ORDER BY lesson",
        )?;
        let mut steps = self.conn.prepare(
            "SELECT step FROM tutorial_steps WHERE lesson = ?1 ORDER BY completed_at_ms, rowid",
        )?;
        let records = lessons
            .query_map([], |r| {
                Ok(LessonRecord {
                    lesson: r.get(0)?,
                    started_after_seq: r.get(1)?,
                    completed_at_ms: r.get(2)?,
                    steps_done: Vec::new(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        records
            .into_iter()
            .map(|mut record| {
                record.steps_done = steps
                    .query_map([&record.lesson], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(record)
            })
            .collect()
    }

    /// How many times the tutorial's progress changed here (a lesson begun, a step done): what
    /// orders its progress records. 0 before any.
    pub fn tutorial_progress_version(&self) -> Result<i64, VaultError> {
        let value: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM vault_meta WHERE key = 'tutorial_progress_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Keeps the user's tutorial progress (JSON, ordered by `sequence`) to push to the server, in
    /// a real vault: it replaces one waiting, and is ignored when one as new was queued or sent.
    /// Returns whether it was kept.
    pub fn queue_training_progress(
        &mut self,
        op_id: &str,
        sequence: i64,
        progress: &str,
    ) -> Result<bool, VaultError> {
        if self.kind()? != VaultKind::Real {
            return Err(VaultError::NotReal);
        }
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        let known: i64 = tx.query_row(
            "SELECT MAX(COALESCE((SELECT sequence FROM training_outbox), -1), \
                        COALESCE((SELECT sequence FROM training_sent), -1))",
            [],
            |r| r.get(0),
        )?;
        if sequence <= known {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO training_outbox (id, op_id, sequence, progress, queued_at_ms) VALUES (1, ?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO UPDATE SET op_id = ?1, sequence = ?2, progress = ?3, queued_at_ms = ?4",
            (op_id, sequence, progress, now),
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// The progress waiting to be pushed: (op id, JSON).
    pub fn pending_training_progress(&self) -> Result<Option<(String, String)>, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT op_id, progress FROM training_outbox WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// The server has the progress pushed as `op_id`: it leaves the outbox (unless a newer one
    /// replaced it meanwhile).
    pub fn training_progress_sent(&mut self, op_id: &str) -> Result<(), VaultError> {
        let tx = self.conn.transaction()?;
        let sequence: Option<i64> = tx
            .query_row(
                "SELECT sequence FROM training_outbox WHERE op_id = ?1",
                [op_id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(sequence) = sequence {
            tx.execute("DELETE FROM training_outbox WHERE op_id = ?1", [op_id])?;
            tx.execute(
                "INSERT INTO training_sent (id, sequence) VALUES (1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET sequence = MAX(sequence, ?1)",
                [sequence],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Counts one more change of the tutorial's progress, in the change's transaction.
fn bump_progress_version(tx: &rusqlite::Transaction<'_>) -> Result<(), VaultError> {
    tx.execute(
        "INSERT INTO vault_meta (key, value) VALUES ('tutorial_progress_version', '1') \
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
        [],
    )?;
    Ok(())
}
