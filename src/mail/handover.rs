//! The hand-over from intake to this process's outbox worker, and the leases it rests on.
//!
//! A mail claimed by the worker after it was queued costs a second write of its row (the claim)
//! besides the one recording its outcome; on PostgreSQL that write was a third of a submission's
//! database work. So the intake queues the mails of a batch already leased to the local worker and
//! passes them on in memory once committed. The lease is the same as a claim's: if the process
//! dies before the mail goes out, the lease runs out and any worker claims it. When the worker is
//! behind (its inbox full) or stopped, mails are queued unleased and claimed as before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, mpsc};

use super::queue::OutboxItem;

/// A claim taken when a mail is queued rather than later: the row is stored leased to `owner`
/// until `until`, exactly as `Store::claim_outbox` would leave it. If the owner never reports
/// an outcome (it crashed), the lease runs out and any worker claims the mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: i64,
}

/// The intake's end: where new mails go, leased to the worker called `owner`.
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

/// Room in the worker's inbox for a batch's mails, reserved before they are stored leased (a
/// leased mail must reach its worker), and the lease to store them under.
pub struct Reserved<'a> {
    pub lease: Lease,
    room: mpsc::PermitIterator<'a, HandedMail>,
}

impl Handover {
    /// Room for up to `n` mails queued at `now`; None when the inbox is too full (the worker is
    /// then told to look in the outbox, where the batch's mails go unleased).
    pub fn reserve(&self, n: usize, now: i64) -> Option<Reserved<'_>> {
        match self.mails.try_reserve_many(n) {
            Ok(room) => Some(Reserved {
                lease: Lease {
                    owner: self.owner.clone(),
                    until: now + self.lease_secs,
                },
                room,
            }),
            Err(_) => {
                self.missed();
                None
            }
        }
    }

    /// Mails were queued unleased: the worker looks in the outbox in its next round.
    pub fn missed(&self) {
        self.missed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

impl Reserved<'_> {
    /// Hands a mail stored under this lease to the worker.
    pub fn hand(&mut self, item: OutboxItem) {
        match self.room.next() {
            Some(permit) => permit.send(HandedMail {
                item,
                lease_until: self.lease.until,
            }),
            // Cannot happen (one place per post); were it to, the lease runs out.
            None => tracing::error!(outbox = item.id, "no room to hand a leased mail over"),
        }
    }
}
