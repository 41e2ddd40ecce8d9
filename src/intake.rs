//! Group commit for new submissions. A contact form gets bursts; storing each post in its own
//! transaction makes the database's per-transaction cost (SQLite's single writer, PostgreSQL's
//! commit and round trips) the ceiling. Posts that arrive while a transaction is running wait in
//! a queue and are stored together by the next one, each still durable before its visitor hears
//! "success". Under light load a batch is one post and nothing waits: there is no timer.
//!
//! With a [`Handover`], each batch's mails are queued leased to this process's worker and handed
//! to it in memory (see `mail::handover`); mails queued unleased ring the worker's bell once the
//! batch is committed.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::domain::{MailGuard, MessageId, NewMessage};
use crate::mail::handover::{Handover, WorkerBell};
use crate::mail::queue::OutgoingMail;
use crate::store::{Inserted, SharedStore, StoreError, Submission};

/// Posts stored by one transaction at most (a transaction stays short; SQLite's other writers,
/// the outbox worker and moderators, wait at most that long).
const MAX_BATCH: usize = 128;
/// Posts waiting beyond this make their senders wait (backpressure, not unbounded memory).
const QUEUE_DEPTH: usize = 4096;

/// Makes a submission's verification mail (its outbox entry) once its id is known.
pub type MakeMail = Box<dyn Fn(MessageId) -> Result<OutgoingMail, String> + Send + Sync>;

/// A new message as the queue holds it until its batch commits.
pub struct NewSubmission {
    pub msg: NewMessage,
    pub now: i64,
    pub nonce: String,
    pub verify_expires_at: i64,
    /// Why a bot filter caught it, if one did.
    pub spam: Option<String>,
    pub mail: MakeMail,
}

impl NewSubmission {
    fn view(&self) -> Submission<'_> {
        Submission {
            msg: &self.msg,
            now: self.now,
            nonce: &self.nonce,
            verify_expires_at: self.verify_expires_at,
            spam: self.spam.as_deref(),
            mail: &*self.mail,
        }
    }
}

struct Job {
    submission: NewSubmission,
    answer: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// The way in for new messages: [`IntakeQueue::store`] returns once the message is committed.
pub struct IntakeQueue {
    jobs: mpsc::Sender<Job>,
}

impl IntakeQueue {
    /// Starts the queue's task (on the current tokio runtime). It ends when the queue is dropped
    /// and every waiting post is stored. With a `handover`, mails go to that worker in memory;
    /// `bell` is rung for those that go into the outbox instead.
    pub fn start(store: SharedStore, guard: MailGuard, bell: WorkerBell, handover: Option<Handover>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let to_worker = ToWorker { bell, handover };
        tokio::spawn(collect(store, guard, to_worker, queue));
        Self { jobs }
    }

    /// Stores one submission (with the others waiting now, in one transaction); returns after the
    /// commit. Dropping the future does not take the submission back: once queued, it is stored.
    pub async fn store(&self, submission: NewSubmission) -> Result<Inserted, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Job { submission, answer })
            .await
            .map_err(|_| StoreError::IntakeStopped)?;
        // No answer at all: the batch's task panicked, and nothing was committed for it.
        answered.await.map_err(|_| StoreError::IntakeStopped)?
    }
}

/// How a batch's mails reach the worker: handed over in memory, or its bell rung.
#[derive(Clone)]
struct ToWorker {
    bell: WorkerBell,
    handover: Option<Handover>,
}

/// Takes what is waiting as one batch whenever a writer is free.
async fn collect(store: SharedStore, guard: MailGuard, to_worker: ToWorker, mut queue: mpsc::Receiver<Job>) {
    let writers = Arc::new(Semaphore::new(store.intake_writers().max(1)));
    while let Some(first) = queue.recv().await {
        // Waiting for a writer BEFORE gathering is what makes batches: posts pile up meanwhile.
        let Ok(writer) = writers.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let store = store.clone();
        let to_worker = to_worker.clone();
        tokio::spawn(async move {
            commit(&store, &guard, &to_worker, batch).await;
            drop(writer);
        });
    }
}

async fn commit(store: &SharedStore, guard: &MailGuard, to_worker: &ToWorker, batch: Vec<Job>) {
    let started = std::time::Instant::now();
    let mut room = to_worker
        .handover
        .as_ref()
        .and_then(|h| h.reserve(batch.len(), batch[0].submission.now));
    let result = {
        let views: Vec<Submission<'_>> = batch.iter().map(|j| j.submission.view()).collect();
        store.insert_batch(&views, guard, room.as_ref().map(|r| &r.lease)).await
    };
    tracing::debug!(
        posts = batch.len(),
        took_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "intake batch"
    );
    crate::metrics::metrics()
        .intake_batch
        .observe(f64::from(u32::try_from(batch.len()).unwrap_or(u32::MAX)));
    match result {
        Ok(inserted) if inserted.len() == batch.len() => {
            let mut unleased = false;
            for (job, mut inserted) in batch.into_iter().zip(inserted) {
                match (inserted.leased.take(), room.as_mut()) {
                    (Some(item), Some(room)) => room.hand(item),
                    _ => unleased |= job.submission.spam.is_none() && inserted.withheld.is_none(),
                }
                let _ = job.answer.send(Ok(inserted));
            }
            if unleased {
                to_worker.bell.ring();
            }
        }
        Ok(inserted) => {
            let e = Arc::new(StoreError::Corrupt(format!(
                "a batch of {} stored {} messages",
                batch.len(),
                inserted.len()
            )));
            answer_all(batch, e);
        }
        Err(e) if batch.len() == 1 => {
            if let Some(job) = batch.into_iter().next() {
                let _ = job.answer.send(Err(e));
            }
        }
        Err(e) if e.concerns_one_submission() => {
            // One post's data spoiled the transaction for all: store each alone, so only that one
            // fails.
            tracing::warn!(error = %e, posts = batch.len(), "a batch of posts failed; storing them one by one");
            drop(room); // stored unleased
            for job in batch {
                let one = store
                    .insert_batch(std::slice::from_ref(&job.submission.view()), guard, None)
                    .await
                    .and_then(|mut one| {
                        one.pop()
                            .ok_or_else(|| StoreError::Corrupt("a batch of one stored nothing".into()))
                    });
                let _ = job.answer.send(one);
            }
            to_worker.bell.ring();
        }
        Err(e) => answer_all(batch, Arc::new(e)),
    }
}

/// The batch's one failure, to each of its posts.
fn answer_all(batch: Vec<Job>, e: Arc<StoreError>) {
    for job in batch {
        let _ = job.answer.send(Err(StoreError::Batch(e.clone())));
    }
}
