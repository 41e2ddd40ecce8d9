//! The hand-over from intake to this process's outbox worker, and the leases it rests on.
//!
//! A mail claimed by the worker after it was queued costs a second write of its row (the claim)
//! besides the one recording its outcome; on PostgreSQL that write was a third of a submission's
//! database work. So the intake queues the mails of a batch already leased to the local worker and
//! passes them on in memory once committed. The lease is the same as a claim's: if the process
//! dies before the mail goes out, the lease runs out and any worker claims it. When the worker is
//! behind (its inbox full) or stopped, mails are queued unleased and claimed as before.
//!
//! Whoever queues a mail the worker does not get in memory rings its [`WorkerBell`]: that is the
//! one way to wake it.

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

/// Tells this process's outbox worker "mail went into the outbox: look there" (a mail handed over
/// wakes it by arriving). A ring while the worker is busy is kept: its next round searches.
#[derive(Clone, Default)]
pub struct WorkerBell {
    inner: Arc<Bell>,
}

#[derive(Default)]
struct Bell {
    notify: Notify,
    rung: AtomicBool,
}

impl WorkerBell {
    pub fn ring(&self) {
        self.inner.rung.store(true, Ordering::Release);
        self.inner.notify.notify_one();
    }

    /// Whether it was rung since the last call.
    pub fn take_rung(&self) -> bool {
        self.inner.rung.swap(false, Ordering::AcqRel)
    }

    /// Returns at the next ring (or at once for one that came while nobody waited).
    pub async fn rung(&self) {
        self.inner.notify.notified().await;
    }
}

/// The intake's end: where new mails go, leased to the worker called `owner`.
#[derive(Clone)]
pub struct Handover {
    owner: String,
    lease_secs: i64,
    mails: mpsc::Sender<HandedMail>,
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
}

/// A hand-over to the worker called `owner`, whose leases last `lease_secs`; at most `capacity`
/// mails wait in memory, so those waiting go out well within their lease.
pub fn handover(owner: &str, lease_secs: i64, capacity: usize) -> (Handover, HandoverInbox) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let handover = Handover {
        owner: owner.to_owned(),
        lease_secs,
        mails: tx,
    };
    (handover, HandoverInbox { mails: rx })
}

/// Room in the worker's inbox for a batch's mails, reserved before they are stored leased (a
/// leased mail must reach its worker), and the lease to store them under.
pub struct Reserved<'a> {
    pub lease: Lease,
    room: mpsc::PermitIterator<'a, HandedMail>,
}

impl Handover {
    /// Room for up to `n` mails queued at `now`; None when the inbox is too full (the batch's
    /// mails then go into the outbox unleased).
    pub fn reserve(&self, n: usize, now: i64) -> Option<Reserved<'_>> {
        let room = self.mails.try_reserve_many(n).ok()?;
        Some(Reserved {
            lease: Lease {
                owner: self.owner.clone(),
                until: now + self.lease_secs,
            },
            room,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ring_is_kept_until_the_worker_looks() {
        let bell = WorkerBell::default();
        assert!(!bell.take_rung());
        bell.ring();
        bell.ring();
        // Rung while nobody waited: the next wait returns at once, and the worker searches once.
        tokio::time::timeout(std::time::Duration::from_secs(1), bell.rung())
            .await
            .expect("a ring wakes a later wait");
        assert!(bell.take_rung());
        assert!(!bell.take_rung(), "one search per ring, however many rang");
    }

    #[test]
    fn mails_handed_over_carry_their_lease_and_a_full_inbox_refuses_a_batch() {
        let (to_worker, mut inbox) = handover("w", 120, 2);
        assert!(to_worker.reserve(3, 1_000).is_none(), "no room for three");
        let mut room = to_worker.reserve(2, 1_000).expect("room for two");
        assert_eq!(
            room.lease,
            Lease {
                owner: "w".into(),
                until: 1_120
            }
        );
        let item = OutboxItem::queued(
            7,
            crate::domain::MessageId(3),
            1_000,
            crate::mail::queue::OutgoingMail {
                kind: crate::mail::queue::MailKind::Verify,
                recipient: "a@example.org".into(),
                sender: "f@example.org".into(),
                message_id_header: "<m@example.org>".into(),
                body: crate::mail::queue::MailBody::Rendered(b"x".to_vec()),
                give_up_at: 2_000,
            },
        );
        room.hand(item.clone());
        drop(room);
        let handed = inbox.mails.try_recv().expect("handed over");
        assert_eq!((handed.item, handed.lease_until), (item, 1_120));
        assert!(
            inbox.mails.try_recv().is_err(),
            "the unused place is given back, not sent"
        );
    }
}
