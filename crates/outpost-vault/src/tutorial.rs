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
        tx.commit()?;
        Ok(last_seq)
    }

    /// Records that `step` of a begun `lesson` is done (once; doing it again changes nothing) and,
    /// when `lesson_complete`, that the lesson is. `started_after_seq` is the beginning the
    /// evidence was looked for after: if the lesson was begun again since, nothing is recorded
    /// (`Ok(false)`). Returns whether the step was new.
    pub fn complete_lesson_step(
        &mut self,
        lesson: &str,
        started_after_seq: i64,
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
        match begun {
            None => return Err(VaultError::LessonNotStarted(lesson.to_owned())),
            Some(begun) if begun != started_after_seq => return Ok(false),
            Some(_) => {}
        }
        let added = tx.execute(
            "INSERT OR IGNORE INTO tutorial_steps (lesson, step, completed_at_ms) VALUES (?1, ?2, ?3)",
            (lesson, step, now),
        )?;
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
        let mut steps = self
            .conn
            .prepare("SELECT step FROM tutorial_steps WHERE lesson = ?1 ORDER BY rowid")?;
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

    /// Keeps the user's tutorial progress (`content`: JSON, read from their sandbox) to push to
    /// the server, in a real vault. Progress that differs from the last one queued or sent gets
    /// the next sequence number of this vault (so a reset tutorial, whose own counts start
    /// again, still reaches the server as the newest) and replaces any waiting; the same progress
    /// again is ignored. Returns the sequence it was given, if it was kept.
    pub fn queue_training_progress(
        &mut self,
        op_id: &str,
        content: &str,
    ) -> Result<Option<i64>, VaultError> {
        if self.kind()? != VaultKind::Real {
            return Err(VaultError::NotReal);
        }
        let now = self.clock.now_ms();
        let tx = self.conn.transaction()?;
        let (known, last): (i64, Option<String>) = tx.query_row(
            "SELECT MAX(COALESCE((SELECT sequence FROM training_outbox), 0), \
                        COALESCE((SELECT sequence FROM training_sent), 0)), \
                    COALESCE((SELECT progress FROM training_outbox), (SELECT progress FROM training_sent))",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if last.as_deref() == Some(content) {
            return Ok(None);
        }
        let sequence = known + 1;
        tx.execute(
            "INSERT INTO training_outbox (id, op_id, sequence, progress, queued_at_ms) VALUES (1, ?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO UPDATE SET op_id = ?1, sequence = ?2, progress = ?3, queued_at_ms = ?4",
            (op_id, sequence, content, now),
        )?;
        tx.commit()?;
        Ok(Some(sequence))
    }

    /// The progress waiting to be pushed: (op id, sequence, JSON).
    pub fn pending_training_progress(&self) -> Result<Option<(String, i64, String)>, VaultError> {
        Ok(self
            .conn
            .query_row(
                "SELECT op_id, sequence, progress FROM training_outbox WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    /// The server has the progress pushed as `op_id`: it leaves the outbox (unless a newer one
    /// replaced it meanwhile).
    pub fn training_progress_sent(&mut self, op_id: &str) -> Result<(), VaultError> {
        let tx = self.conn.transaction()?;
        let sent: Option<(i64, String)> = tx
            .query_row(
                "SELECT sequence, progress FROM training_outbox WHERE op_id = ?1",
                [op_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((sequence, progress)) = sent {
            tx.execute("DELETE FROM training_outbox WHERE op_id = ?1", [op_id])?;
            tx.execute(
                "INSERT INTO training_sent (id, sequence, progress) VALUES (1, ?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET sequence = ?1, progress = ?2",
                (sequence, progress),
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}
