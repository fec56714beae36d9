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
}
