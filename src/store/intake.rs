//! Group commit for new submissions. A contact form gets bursts; storing each post in its own
//! transaction makes the database's per-transaction cost (SQLite's single writer, PostgreSQL's
//! commit and round trips) the ceiling. Posts that arrive while a transaction is running wait in
//! a queue and are stored together by the next one, each still durable before its visitor hears
//! "success". Under light load a batch is one post and nothing waits: there is no timer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use super::{Inserted, Lease, MailGuard, OutboxItem, OutgoingMail, SharedStore, StoreError, Submission};
use crate::domain::{MessageId, NewMessage};

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

/// The hand-over from intake to this process's outbox worker. A mail claimed by the worker after
/// it was queued costs a second write of its row (the claim) besides the one recording its
/// outcome; on PostgreSQL that write was a third of a submission's database work. So the intake
/// queues the mails of a batch already leased to the local worker and passes them on in memory
/// once committed. The lease is the same as a claim's: if the process dies before the mail goes
/// out, the lease runs out and any worker claims it. When the worker is behind (its inbox full)
/// or stopped, mails are queued unleased and claimed as before.
#[derive(Clone)]
pub struct Handover {
    owner: String,
    lease_secs: i64,
    mails: mpsc::Sender<HandedMail>,
    /// Set when a mail went into the outbox unleased: the worker should look there soon.
    missed: Arc<AtomicBool>,
    /// Wakes an idle worker for such a mail (a handed-over one wakes it by arriving).
    wake: Arc<Notify>,
}

impl Handover {
    /// Mails were queued unleased: the worker looks in the outbox in its next round.
    fn missed(&self) {
        self.missed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// A mail the worker owns from the moment it is committed.
#[derive(Debug)]
pub struct HandedMail {
    pub item: OutboxItem,
    pub lease_until: i64,
}

/// The worker's end of a [`Handover`].
pub struct HandoverInbox {
    pub mails: mpsc::Receiver<HandedMail>,
    missed: Arc<AtomicBool>,
}

impl HandoverInbox {
    /// Whether mails were queued unleased since the last call.
    pub fn take_missed(&self) -> bool {
        self.missed.swap(false, Ordering::AcqRel)
    }
}

/// A hand-over to the worker called `owner`, whose leases last `lease_secs` and whom `wake` wakes;
/// at most `capacity` mails wait in memory, so those waiting go out well within their lease.
pub fn handover(owner: &str, lease_secs: i64, capacity: usize, wake: Arc<Notify>) -> (Handover, HandoverInbox) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let missed = Arc::new(AtomicBool::new(false));
    let handover = Handover {
        owner: owner.to_owned(),
        lease_secs,
        mails: tx,
        missed: missed.clone(),
        wake,
    };
    (handover, HandoverInbox { mails: rx, missed })
}

/// The way in for new messages: [`IntakeQueue::store`] returns once the message is committed.
pub struct IntakeQueue {
    jobs: mpsc::Sender<Job>,
}

impl IntakeQueue {
    /// Starts the queue's task (on the current tokio runtime). It ends when the queue is dropped
    /// and every waiting post is stored. With a `handover`, mails go to that worker in memory.
    pub fn start(store: SharedStore, guard: MailGuard, handover: Option<Handover>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(collect(store, guard, handover, queue));
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

/// Takes what is waiting as one batch whenever a writer is free.
async fn collect(store: SharedStore, guard: MailGuard, handover: Option<Handover>, mut queue: mpsc::Receiver<Job>) {
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
        let handover = handover.clone();
        tokio::spawn(async move {
            commit(&store, &guard, handover.as_ref(), batch).await;
            drop(writer);
        });
    }
}

async fn commit(store: &SharedStore, guard: &MailGuard, handover: Option<&Handover>, batch: Vec<Job>) {
    let started = std::time::Instant::now();
    // Room in the worker's inbox for every mail the batch may queue, reserved before the mails
    // are stored leased: a leased mail must reach its worker.
    let mut room = handover.and_then(|h| h.mails.try_reserve_many(batch.len()).ok());
    let lease = match (handover, &room) {
        (Some(h), Some(_)) => Some(Lease {
            owner: h.owner.clone(),
            until: batch[0].submission.now + h.lease_secs,
        }),
        (Some(h), None) => {
            h.missed();
            None
        }
        (None, _) => None,
    };
    let result = {
        let views: Vec<Submission<'_>> = batch.iter().map(|j| j.submission.view()).collect();
        store.insert_batch(&views, guard, lease.as_ref()).await
    };
    tracing::debug!(
        posts = batch.len(),
        took_us = started.elapsed().as_micros() as u64,
        "intake batch"
    );
    match result {
        Ok(inserted) if inserted.len() == batch.len() => {
            for (job, mut inserted) in batch.into_iter().zip(inserted) {
                if let (Some(item), Some(lease)) = (inserted.leased.take(), &lease) {
                    match room.as_mut().and_then(Iterator::next) {
                        Some(permit) => permit.send(HandedMail {
                            item,
                            lease_until: lease.until,
                        }),
                        // Cannot happen (one place per post); were it to, the lease runs out.
                        None => tracing::error!(outbox = item.id, "no room to hand a leased mail over"),
                    }
                }
                let _ = job.answer.send(Ok(inserted));
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
            if let Some(h) = handover {
                h.missed(); // stored unleased
            }
            for job in batch {
                let one = store.insert_one(&job.submission.view(), guard).await;
                let _ = job.answer.send(one);
            }
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
