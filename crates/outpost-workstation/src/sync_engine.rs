//! The background sync engine: on a tokio runtime, it pushes then pulls, on a timer while online,
//! with exponential backoff and jitter while the server cannot be reached, and at once when asked.
//! Its state (online, last success, pending operations, the last error) is published for the UI.
//! It never blocks the caller: each round runs on tokio's blocking pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::{PullProgress, PullReport, PushProgress, PushReport, Session, WorkstationError};

/// How often a running transfer's progress is published at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// When the engine syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncSchedule {
    /// Between rounds while everything works.
    pub interval: Duration,
    /// The first wait after a failure; it doubles with each failure in a row.
    pub first_retry: Duration,
    /// The longest wait between attempts.
    pub max_retry: Duration,
    /// While online, how often the engine looks for local changes waiting to be sent (a note, a
    /// signature, made since or during its last round) and, finding one, syncs without waiting
    /// for the next round.
    pub change_check: Duration,
}

impl Default for SyncSchedule {
    fn default() -> SyncSchedule {
        SyncSchedule {
            interval: Duration::from_secs(60),
            first_retry: Duration::from_secs(2),
            max_retry: Duration::from_secs(300),
            change_check: Duration::from_secs(2),
        }
    }
}

/// Exponential backoff with jitter: after `n` failures in a row the wait is drawn from
/// [d/2, d] where d = min(first_retry · 2ⁿ⁻¹, max_retry), so many workstations coming back
/// online at once do not retry in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    schedule: SyncSchedule,
    failures: u32,
}

impl Backoff {
    /// No failures yet.
    pub fn new(schedule: SyncSchedule) -> Backoff {
        Backoff {
            schedule,
            failures: 0,
        }
    }

    /// Counts a failure; the wait before the next attempt, `random` in [0, 1) choosing where in
    /// the jitter range it falls.
    pub fn after_failure(&mut self, random: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let doubling = 2u32.saturating_pow(self.failures.saturating_sub(1).min(30));
        let ceiling = self
            .schedule
            .first_retry
            .saturating_mul(doubling)
            .min(self.schedule.max_retry);
        ceiling.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
    }

    /// A success: the next failure starts from the first wait again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The last error, as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncErrorInfo {
    /// The stable code ([`WorkstationError::code`]).
    pub code: String,
    /// The message for people.
    pub message: String,
}

/// What the engine tells the UI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncState {
    /// The server answered the last attempt.
    pub online: bool,
    /// A round is running.
    pub running: bool,
    /// When the last round succeeded (vault clock, ms).
    pub last_success_ms: Option<i64>,
    /// Local changes waiting to be pushed.
    pub pending_operations: usize,
    /// Rounds attempted since the engine started.
    pub attempts: u64,
    /// The last round's error, if it failed.
    pub last_error: Option<SyncErrorInfo>,
    /// The server session ended: the user must sign in again (the engine waits for that).
    pub needs_sign_in: bool,
    /// The server revoked this device: the engine has stopped; the app wipes the vault.
    pub device_revoked: bool,
    /// The documents arriving in the running round, while there are any.
    pub transfer: Option<TransferProgress>,
    /// The signed revisions going to the server in the running round, while there are any
    /// (`documents_*` count revisions, all those waiting; `documents_stored` stays 0).
    pub sending: Option<TransferProgress>,
    /// The user stopped the last transfer: the engine waits until asked (or its next interval).
    pub paused: bool,
}

/// Documents arriving from the server in the running round: what a progress bar shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TransferProgress {
    /// Documents this round downloads.
    pub documents_total: usize,
    /// Of those, here now.
    pub documents_done: usize,
    /// Their bytes in all.
    pub bytes_total: u64,
    /// Bytes here now (whole documents and the part of the current one).
    pub bytes_done: u64,
    /// The document arriving now.
    pub current_title: String,
    /// Documents of this round already stored (listed and opened while the round goes on).
    pub documents_stored: usize,
}

/// One step of a transfer either way, as the bar follows it.
enum TransferStep {
    Planned { count: usize, bytes: u64 },
    Moving { title: String, done: u64 },
    Finished { title: String, bytes: u64 },
    Stored { documents: usize },
}

impl From<PullProgress> for TransferStep {
    fn from(step: PullProgress) -> Self {
        match step {
            PullProgress::Planned {
                downloads, bytes, ..
            } => TransferStep::Planned {
                count: downloads,
                bytes,
            },
            PullProgress::Downloading { title, done, .. } => TransferStep::Moving { title, done },
            PullProgress::Arrived { title, bytes } => TransferStep::Finished { title, bytes },
            PullProgress::Stored { documents } => TransferStep::Stored { documents },
        }
    }
}

impl From<PushProgress> for TransferStep {
    fn from(step: PushProgress) -> Self {
        match step {
            PushProgress::Planned { revisions, bytes } => TransferStep::Planned {
                count: revisions,
                bytes,
            },
            PushProgress::Uploading { title, done, .. } => TransferStep::Moving { title, done },
            PushProgress::Uploaded { title, bytes } => TransferStep::Finished { title, bytes },
        }
    }
}

impl TransferProgress {
    /// Follows one step of a pull or a push: `None` until a round plans a transfer. `finished`
    /// counts the bytes of the items already done; the bytes shown never go back (a retried
    /// request reports what the other side holds).
    fn follow(
        this: &mut Option<TransferProgress>,
        finished: &mut u64,
        step: impl Into<TransferStep>,
    ) {
        match step.into() {
            TransferStep::Planned { count, bytes } => {
                *finished = 0;
                *this = (count > 0).then(|| TransferProgress {
                    documents_total: count,
                    bytes_total: bytes,
                    ..TransferProgress::default()
                });
            }
            TransferStep::Moving { title, done } => {
                if let Some(t) = this {
                    t.current_title = title;
                    t.bytes_done = (*finished + done).min(t.bytes_total).max(t.bytes_done);
                }
            }
            TransferStep::Finished { title, bytes } => {
                if let Some(t) = this {
                    *finished += bytes;
                    t.documents_done = (t.documents_done + 1).min(t.documents_total);
                    t.bytes_done = (*finished).min(t.bytes_total).max(t.bytes_done);
                    t.current_title = title;
                }
            }
            TransferStep::Stored { documents } => {
                if let Some(t) = this {
                    t.documents_stored = documents;
                }
            }
        }
    }
}

/// A running engine.
pub struct SyncEngine {
    wake: mpsc::UnboundedSender<()>,
    state: watch::Receiver<SyncState>,
    cancel: Arc<AtomicBool>,
    /// Set to stop the running round (by the user, or by [`SyncEngine::stop`]).
    cancel_round: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl SyncEngine {
    /// Starts the engine for `session` on `runtime`; the first round starts at once. The jitter
    /// comes from the session's RNG.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        session: Arc<Session>,
        schedule: SyncSchedule,
    ) -> SyncEngine {
        let (wake, mut woken) = mpsc::unbounded_channel::<()>();
        let (publish, state) = watch::channel(SyncState::default());
        let publish = Arc::new(publish);
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&cancel);
        let cancel_round = Arc::new(AtomicBool::new(false));
        let round_cancel = Arc::clone(&cancel_round);
        let task = runtime.spawn(async move {
            let mut backoff = Backoff::new(schedule);
            let mut current = SyncState::default();
            loop {
                // Reset before the stop check: a stop that comes after it cancels the round.
                round_cancel.store(false, Ordering::SeqCst);
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                current.running = true;
                current.paused = false;
                current.attempts += 1;
                publish.send_replace(current.clone());
                let round_session = Arc::clone(&session);
                let cancelling = Arc::clone(&round_cancel);
                let progress = Arc::clone(&publish);
                let outcome = tokio::task::spawn_blocking(move || {
                    round(
                        &round_session,
                        &cancelling,
                        &mut published_push_progress(&progress),
                        &mut published_progress(&progress),
                    )
                })
                .await
                .unwrap_or_else(|error| {
                    Err(WorkstationError::Sync(format!(
                        "the sync round stopped: {error}"
                    )))
                });
                current.running = false;
                current.transfer = None;
                current.sending = None;
                // Only the cancellation itself counts as the user's stop: a round that failed for
                // another reason meanwhile (revoked, signed out, offline) is handled as such.
                let cancelled_by_user = round_cancel.load(Ordering::SeqCst)
                    && !stop.load(Ordering::SeqCst)
                    && matches!(&outcome, Err(e) if e.code() == "cancelled");
                current.pending_operations = session
                    .pending_operations()
                    .unwrap_or(current.pending_operations);
                let mut wait = Some(schedule.interval);
                match outcome {
                    // Stopped by the user: what arrived is kept; nothing more until asked.
                    Err(_) if cancelled_by_user => {
                        current.paused = true;
                        current.last_error = None;
                        // A "sync now" pressed while the round ran must not undo the stop.
                        while woken.try_recv().is_ok() {}
                    }
                    Ok(_) => {
                        backoff.reset();
                        current.online = true;
                        current.needs_sign_in = false;
                        current.last_error = None;
                        current.last_success_ms = Some(session.now_ms());
                    }
                    Err(error) => {
                        current.last_error = Some(SyncErrorInfo {
                            code: error.code().into(),
                            message: error.to_string(),
                        });
                        if error.is_device_revoked() {
                            current.device_revoked = true;
                            current.online = true;
                            publish.send_replace(current.clone());
                            break;
                        }
                        match error {
                            WorkstationError::SignInNeeded => {
                                current.online = true;
                                current.needs_sign_in = true;
                                wait = None;
                            }
                            WorkstationError::Server(ref server) => {
                                current.online = !server.is_transient();
                                let random = random_unit(&session);
                                wait = Some(backoff.after_failure(random));
                            }
                            _ => {
                                let random = random_unit(&session);
                                wait = Some(backoff.after_failure(random));
                            }
                        }
                    }
                }
                publish.send_replace(current.clone());
                // Online, a local change is sent soon; offline, the backoff decides when to try
                // again, and meanwhile the count of what waits follows the user's work.
                let watch_changes =
                    current.online && current.last_error.is_none() && !current.paused;
                let asked = match wait {
                    Some(wait) => {
                        let deadline = tokio::time::Instant::now() + wait;
                        loop {
                            tokio::select! {
                                _ = tokio::time::sleep_until(deadline) => break true,
                                message = woken.recv() => break message.is_some(),
                                _ = tokio::time::sleep(schedule.change_check) => {
                                    if look_at_local_changes(&session, watch_changes, &mut current, &publish).await {
                                        break true;
                                    }
                                }
                            }
                        }
                    }
                    None => woken.recv().await.is_some(),
                };
                if !asked {
                    break;
                }
                // Several requests while a round ran are one more round.
                while woken.try_recv().is_ok() {}
            }
            current.running = false;
            publish.send_replace(current);
        });
        SyncEngine {
            wake,
            state,
            cancel,
            cancel_round,
            task,
        }
    }

    /// Asks for a round now (after the one running, if any).
    pub fn sync_now(&self) {
        let _ = self.wake.send(());
    }

    /// Stops the running round's transfer between parts (what arrived is kept, and the next
    /// round resumes it); the engine then waits for [`SyncEngine::sync_now`] or its interval.
    pub fn cancel_transfer(&self) {
        // Only a round that is moving documents: a stop pressed as that round ended must not
        // cancel the next one (which may be pushing the user's signatures).
        let moving = {
            let state = self.state.borrow();
            state.running && (state.transfer.is_some() || state.sending.is_some())
        };
        if moving {
            self.cancel_round.store(true, Ordering::SeqCst);
        }
    }

    /// The engine's state now.
    pub fn state(&self) -> SyncState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every change of state (for pushing events to the UI).
    pub fn subscribe(&self) -> watch::Receiver<SyncState> {
        self.state.clone()
    }

    /// Whether the engine has stopped (after a device revocation, or [`SyncEngine::stop`]).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the engine: a running round is cancelled between documents; waits for it to end.
    pub async fn stop(self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.cancel_round.store(true, Ordering::SeqCst);
        let _ = self.wake.send(());
        drop(self.wake);
        let _ = self.task.await;
    }
}

/// Between rounds, every `change_check`: when watching for changes (online, no error, not
/// paused), whether anything waits to be sent — made since (or during) the last round, which sent
/// all it could — so a round should start now; otherwise the count of what waits, published when
/// the user's work changed it.
async fn look_at_local_changes(
    session: &Arc<Session>,
    watch_changes: bool,
    current: &mut SyncState,
    publish: &watch::Sender<SyncState>,
) -> bool {
    let looking = Arc::clone(session);
    if watch_changes {
        let waiting = tokio::task::spawn_blocking(move || looking.has_changes_to_send().ok())
            .await
            .ok()
            .flatten();
        return waiting == Some(true);
    }
    let pending = tokio::task::spawn_blocking(move || looking.pending_operations().ok())
        .await
        .ok()
        .flatten();
    if let Some(pending) = pending.filter(|p| *p != current.pending_operations) {
        current.pending_operations = pending;
        publish.send_replace(current.clone());
    }
    false
}

/// A pull's progress as the engine publishes it: the transfer in the state, at most every
/// [`PROGRESS_EVERY`] while bytes arrive, and at once when a document is here.
fn published_progress(publish: &Arc<watch::Sender<SyncState>>) -> impl FnMut(PullProgress) + '_ {
    let mut transfer: Option<TransferProgress> = None;
    let mut arrived_bytes = 0u64;
    let mut last = std::time::Instant::now();
    move |step| {
        let at_once = !matches!(step, PullProgress::Downloading { .. });
        TransferProgress::follow(&mut transfer, &mut arrived_bytes, step);
        if at_once || last.elapsed() >= PROGRESS_EVERY {
            last = std::time::Instant::now();
            let shown = transfer.clone();
            publish.send_if_modified(|state| {
                let changed = state.transfer != shown;
                state.transfer = shown;
                changed
            });
        }
    }
}

/// A push's progress as the engine publishes it: what is being sent, in the state, at most every
/// [`PROGRESS_EVERY`] while bytes go, and at once when a revision's upload begins or ends;
/// cleared once the uploads are done (the round goes on to the operations and the pull).
fn published_push_progress(
    publish: &Arc<watch::Sender<SyncState>>,
) -> impl FnMut(PushProgress) + '_ {
    let mut sending: Option<TransferProgress> = None;
    let mut sent_bytes = 0u64;
    let mut last = std::time::Instant::now();
    move |step| {
        let at_once = match &step {
            PushProgress::Uploading { title, .. } => {
                sending.as_ref().is_some_and(|s| &s.current_title != title)
            }
            _ => true,
        };
        TransferProgress::follow(&mut sending, &mut sent_bytes, step);
        if at_once || last.elapsed() >= PROGRESS_EVERY {
            last = std::time::Instant::now();
            let shown = sending
                .clone()
                .filter(|s| s.documents_done < s.documents_total);
            publish.send_if_modified(|state| {
                let changed = state.sending != shown;
                state.sending = shown;
                changed
            });
        }
    }
}

/// One round: push what is waiting (its uploads' progress to `push_progress`), pull (its
/// progress to `pull_progress`), then upload the audit chain's new entries.
fn round(
    session: &Session,
    cancel: &AtomicBool,
    push_progress: &mut dyn FnMut(PushProgress),
    pull_progress: &mut dyn FnMut(PullProgress),
) -> Result<(PushReport, PullReport), WorkstationError> {
    let pushed = session.sync_push_cancellable(cancel, push_progress)?;
    let pulled = session.sync_pull(cancel, pull_progress)?;
    let problems = session.sync_audit()?;
    if !problems.is_empty() {
        tracing::warn!(
            count = problems.len(),
            "the server flagged continuity problems in this vault's audit chain"
        );
    }
    Ok((pushed, pulled))
}

/// A number in [0, 1) from the session's RNG, for jitter.
fn random_unit(session: &Session) -> f64 {
    (session.random_u32() as f64) / (u32::MAX as f64 + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sending_bar_counts_revisions_and_bytes_and_never_goes_back() {
        let (mut sending, mut sent) = (None, 0u64);
        let mut step = |s: PushProgress| {
            TransferProgress::follow(&mut sending, &mut sent, s);
            sending.clone().expect("planned")
        };
        let planned = step(PushProgress::Planned {
            revisions: 2,
            bytes: 300,
        });
        assert_eq!((planned.documents_total, planned.bytes_total), (2, 300));
        let first = step(PushProgress::Uploading {
            title: "A".into(),
            done: 60,
            total: 100,
        });
        assert_eq!((first.bytes_done, first.current_title.as_str()), (60, "A"));
        // A retried request reports what the server holds: less than last said is not shown.
        let retried = step(PushProgress::Uploading {
            title: "A".into(),
            done: 40,
            total: 100,
        });
        assert_eq!(retried.bytes_done, 60);
        let done = step(PushProgress::Uploaded {
            title: "A".into(),
            bytes: 100,
        });
        assert_eq!((done.documents_done, done.bytes_done), (1, 100));
        let second = step(PushProgress::Uploading {
            title: "B".into(),
            done: 150,
            total: 200,
        });
        assert_eq!(
            (second.bytes_done, second.current_title.as_str()),
            (250, "B")
        );
        let all = step(PushProgress::Uploaded {
            title: "B".into(),
            bytes: 200,
        });
        assert_eq!((all.documents_done, all.bytes_done), (2, 300));
        // Nothing to send: no bar.
        TransferProgress::follow(
            &mut sending,
            &mut sent,
            PushProgress::Planned {
                revisions: 0,
                bytes: 0,
            },
        );
        assert!(sending.is_none());
    }

    #[test]
    fn waits_double_up_to_the_ceiling_with_jitter_in_the_upper_half() {
        let schedule = SyncSchedule {
            interval: Duration::from_secs(60),
            first_retry: Duration::from_secs(2),
            max_retry: Duration::from_secs(60),
            change_check: Duration::from_secs(2),
        };
        let mut backoff = Backoff::new(schedule);
        let ceilings = [2, 4, 8, 16, 32, 60, 60, 60];
        for ceiling in ceilings {
            let low = Backoff {
                failures: backoff.failures,
                ..backoff.clone()
            }
            .after_failure(0.0);
            let high = backoff.after_failure(0.999_999);
            assert_eq!(low, Duration::from_secs(ceiling) / 2);
            assert!(
                high <= Duration::from_secs(ceiling)
                    && high > Duration::from_secs(ceiling) * 99 / 100
            );
        }
        backoff.reset();
        assert_eq!(backoff.after_failure(0.0), Duration::from_secs(1));
    }
}
