//! The outbox worker: every mail and every webhook delivery formgate sends goes through here.
//! One worker per channel ([`Channel`]): mails over SMTP lanes, webhooks over HTTP, so that a
//! slow receiver never holds up a verification mail, nor an SMTP outage a webhook.
//!
//! Rows are claimed with a lease in a short write transaction, sent OUTSIDE any transaction over a
//! few reused connections in parallel, and their outcome recorded in one batch. New submissions'
//! mails skip the claim: they are queued already leased to this worker and handed to it in memory
//! (`mail::handover`); the outbox is searched for the rest (retries, other instances' mails, mails
//! that found the hand-over full) when that runs dry, when told to, and every `poll`. A worker that dies
//! mid-send leaves leases that expire, and the mail is sent again by whoever claims it next:
//! at-least-once, with the same Message-ID, never lost. On a clean shutdown the worker finishes
//! the mails it is sending and hands back the leases of the ones it had not started.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::compose::ComposeError;
use super::handover::{self, HandedMail, Handover, HandoverInbox, WorkerBell};
use super::queue::{Channel, OutboxItem, SendOutcome};
use super::transport::{Lane, SendError, Transport};
use super::verify::VerificationMails;
use crate::clock::SharedClock;
use crate::store::SharedStore;
use crate::webhook::WebhookSender;

/// What a worker delivers, and how.
#[derive(Clone)]
pub enum Courier {
    /// Mail over SMTP (or into `.eml` files); verification mails are rendered when sent.
    Mail {
        transport: Transport,
        mails: Arc<VerificationMails>,
    },
    /// Webhook deliveries over HTTP.
    Webhooks(Arc<WebhookSender>),
}

impl Courier {
    fn channel(&self) -> Channel {
        match self {
            Courier::Mail { .. } => Channel::Mail,
            Courier::Webhooks(_) => Channel::Webhook,
        }
    }

    fn lane(&self) -> CourierLane {
        match self {
            Courier::Mail { transport, mails } => CourierLane::Mail {
                lane: Box::new(transport.lane()),
                mails: mails.clone(),
            },
            Courier::Webhooks(sender) => CourierLane::Webhook(sender.clone()),
        }
    }
}

/// One of a worker's parallel senders. A mail lane (an SMTP connection's state) is boxed: it is
/// over a kilobyte, a webhook lane one pointer.
enum CourierLane {
    Mail {
        lane: Box<Lane>,
        mails: Arc<VerificationMails>,
    },
    Webhook(Arc<WebhookSender>),
}

impl CourierLane {
    async fn deliver(&mut self, item: &OutboxItem, now: i64) -> SendOutcome {
        match self {
            CourierLane::Mail { lane, mails } => match mails.bytes(item) {
                Ok(message) => match lane.send(item, &message).await {
                    Ok(()) => SendOutcome::Sent,
                    Err(e) => outcome_of_failure(item, e, now),
                },
                Err(e) => render_failure(item, e, now),
            },
            CourierLane::Webhook(sender) => sender.deliver(item, now).await,
        }
    }

    async fn close(&mut self) {
        if let CourierLane::Mail { lane, .. } = self {
            lane.close().await;
        }
    }
}

#[derive(Clone, Debug)]
pub struct OutboxConfig {
    /// Parallel sending lanes (SMTP connections).
    pub lanes: usize,
    /// Rows claimed per round.
    pub batch: i64,
    /// How long a claim holds before another worker may take the row.
    pub lease: Duration,
    /// How often to look for due rows when nothing woke the worker (other instances, retries).
    pub poll: Duration,
    /// New mails that may wait in memory for this worker (0: none are handed over; all are claimed).
    pub handover: usize,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            lanes: 4,
            batch: 64,
            lease: Duration::from_secs(120),
            poll: Duration::from_secs(2),
            // A few seconds of sending at full speed: well within a lease.
            handover: 1024,
        }
    }
}

/// Backoff after the `attempts`-th failure: 30 s, 1 min, 2 min … capped at 1 hour. The first retry
/// comes within a minute; a long outage costs one attempt an hour.
pub fn retry_delay(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 20) - 1;
    (30i64 << exp).min(3600)
}

pub struct OutboxWorker {
    store: SharedStore,
    courier: Courier,
    clock: SharedClock,
    config: OutboxConfig,
    owner: String,
    wake: WorkerBell,
    inbox: Option<HandoverInbox>,
}

impl OutboxWorker {
    /// The mail worker: `mails` renders the verification mails, which are queued unrendered.
    pub fn new(
        store: SharedStore,
        transport: Transport,
        mails: Arc<VerificationMails>,
        clock: SharedClock,
        config: OutboxConfig,
        wake: WorkerBell,
    ) -> Self {
        Self::with_courier(store, Courier::Mail { transport, mails }, clock, config, wake)
    }

    /// The webhook worker. It takes no hand-over: only verification mails are handed over.
    pub fn webhooks(
        store: SharedStore,
        sender: Arc<WebhookSender>,
        clock: SharedClock,
        config: OutboxConfig,
        wake: WorkerBell,
    ) -> Self {
        let config = OutboxConfig { handover: 0, ..config };
        Self::with_courier(store, Courier::Webhooks(sender), clock, config, wake)
    }

    fn with_courier(
        store: SharedStore,
        courier: Courier,
        clock: SharedClock,
        config: OutboxConfig,
        wake: WorkerBell,
    ) -> Self {
        let r = crate::token::random_bytes::<6>();
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let owner = format!(
            "{host}:{}:{}:{}",
            std::process::id(),
            courier.channel().as_str(),
            r.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        Self {
            store,
            courier,
            clock,
            config,
            owner,
            wake,
            inbox: None,
        }
    }

    /// Where the intake hands this worker its new mails, leased to it when queued (`None` when
    /// the configuration turns hand-over off).
    pub fn handover(&mut self) -> Option<Handover> {
        if self.config.handover == 0 {
            return None;
        }
        let lease = crate::clock::seconds(self.config.lease);
        let (handover, inbox) = handover::handover(&self.owner, lease, self.config.handover);
        self.inbox = Some(inbox);
        Some(handover)
    }

    /// Runs until `shutdown` turns true; then finishes what is in flight and releases its leases.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let stopping = Arc::new(AtomicBool::new(false));
        let channel = self.courier.channel();
        let mut lanes: Vec<CourierLane> = (0..self.config.lanes.max(1)).map(|_| self.courier.lane()).collect();
        let mut inbox = self.inbox.take();
        // A mail taken from the inbox while idle, sent in the next round.
        let mut waiting: Option<HandedMail> = None;
        let mut last_search: Option<Instant> = None;
        tracing::info!(owner = %self.owner, channel = channel.as_str(), lanes = lanes.len(), "outbox worker started");
        loop {
            // A dropped sender counts as "stop" too.
            if *shutdown.borrow() || shutdown.has_changed().is_err() {
                break;
            }
            let now = self.clock.now();
            let mut items = take_handed(
                &mut inbox,
                waiting.take(),
                now,
                usize::try_from(self.config.batch.max(1)).unwrap_or(1),
            );
            // Rung: mail went into the outbox meanwhile (not handed over): look there too.
            let missed = self.wake.take_rung();
            let search = items.is_empty() || missed || last_search.is_none_or(|t| t.elapsed() >= self.config.poll);
            if search {
                last_search = Some(Instant::now());
                let lease_until = now + crate::clock::seconds(self.config.lease);
                match self
                    .store
                    .claim_outbox(&self.owner, now, lease_until, self.config.batch, channel)
                    .await
                {
                    Ok(claimed) => items.extend(claimed),
                    Err(e) => {
                        tracing::error!(error = %e, "outbox: cannot claim mail; retrying shortly");
                        if items.is_empty() {
                            self.idle(&mut shutdown, Duration::from_secs(1)).await;
                            continue;
                        }
                    }
                }
            }
            if items.is_empty() {
                let wait = match self.store.next_outbox_due(channel).await {
                    Ok(Some(due)) => Duration::from_secs(u64::try_from((due - now).clamp(0, 3600)).unwrap_or(0))
                        .min(self.config.poll),
                    _ => self.config.poll,
                };
                waiting = self
                    .idle_or_handed(&mut shutdown, &mut inbox, wait.max(Duration::from_millis(50)))
                    .await;
                continue;
            }
            // Watch for shutdown while sending so lanes stop starting new mails.
            let flag = stopping.clone();
            let mut sd = shutdown.clone();
            let watcher = tokio::spawn(async move {
                let _ = sd.wait_for(|s| *s).await;
                flag.store(true, Ordering::SeqCst);
            });
            let (returned, results) = self
                .send_batch(std::mem::take(&mut lanes), items, stopping.clone())
                .await;
            watcher.abort();
            lanes = returned;
            self.record(&results).await;
        }
        for lane in &mut lanes {
            lane.close().await;
        }
        // Mails still in the inbox are leased to this worker: released with the rest.
        drop(inbox);
        match self.store.release_leases(&self.owner).await {
            Ok(n) => tracing::info!(released = n, "outbox worker stopped"),
            Err(e) => {
                tracing::warn!(error = %e, "outbox worker stopped; its leases will expire by themselves")
            }
        }
    }

    /// [`OutboxWorker::idle`], also ended by a mail handed over, which it returns.
    async fn idle_or_handed(
        &self,
        shutdown: &mut watch::Receiver<bool>,
        inbox: &mut Option<HandoverInbox>,
        wait: Duration,
    ) -> Option<HandedMail> {
        let Some(open) = inbox.as_mut() else {
            self.idle(shutdown, wait).await;
            return None;
        };
        tokio::select! {
            handed = open.mails.recv() => {
                if handed.is_none() {
                    *inbox = None; // every intake is gone: nothing more comes this way
                }
                handed
            }
            _ = self.idle(shutdown, wait) => None,
        }
    }

    async fn idle(&self, shutdown: &mut watch::Receiver<bool>, wait: Duration) {
        tokio::select! {
            _ = self.wake.rung() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }

    /// Spreads the batch over the lanes; each lane sends its share in order over its connection.
    async fn send_batch(
        &self,
        lanes: Vec<CourierLane>,
        items: Vec<OutboxItem>,
        stopping: Arc<AtomicBool>,
    ) -> (Vec<CourierLane>, Vec<(i64, SendOutcome)>) {
        let n = lanes.len();
        let mut shares: Vec<Vec<OutboxItem>> = (0..n).map(|_| Vec::new()).collect();
        for (i, item) in items.into_iter().enumerate() {
            shares[i % n].push(item);
        }
        let mut set = JoinSet::new();
        for (mut lane, share) in lanes.into_iter().zip(shares) {
            let clock = self.clock.clone();
            let stopping = stopping.clone();
            set.spawn(async move {
                let mut results = Vec::with_capacity(share.len());
                for item in share {
                    if stopping.load(Ordering::SeqCst) {
                        break; // not started: its lease is released on the way out
                    }
                    let outcome = lane.deliver(&item, clock.now()).await;
                    log_outcome(&item, &outcome);
                    results.push((item.id, outcome));
                }
                (lane, results)
            });
        }
        let mut lanes = Vec::with_capacity(n);
        let mut results = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((lane, r)) => {
                    lanes.push(lane);
                    results.extend(r);
                }
                // A panicking lane loses only its leases, which expire; keep the lane count.
                Err(e) => {
                    tracing::error!(error = %e, "outbox lane failed");
                    lanes.push(self.courier.lane());
                }
            }
        }
        (lanes, results)
    }

    #[tracing::instrument(level = "debug", name = "record_sends", skip_all, fields(mails = results.len()))]
    async fn record(&self, results: &[(i64, SendOutcome)]) {
        for attempt in 0..5 {
            match self.store.finish_outbox(&self.owner, self.clock.now(), results).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(error = %e, attempt, "outbox: cannot record send results");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
        // The leases expire and these mails go out again: a duplicate, never a loss.
        tracing::error!(
            count = results.len(),
            "outbox: gave up recording results; those mails will be sent again"
        );
    }
}

/// Up to `max` mails from the inbox (and the one taken while idle). A mail whose lease ran out
/// while it waited is left to whoever claims it from the outbox: sending it here too could send
/// it twice.
fn take_handed(
    inbox: &mut Option<HandoverInbox>,
    waiting: Option<HandedMail>,
    now: i64,
    max: usize,
) -> Vec<OutboxItem> {
    let mut handed: Vec<HandedMail> = waiting.into_iter().collect();
    if let Some(inbox) = inbox.as_mut() {
        while handed.len() < max {
            match inbox.mails.try_recv() {
                Ok(mail) => handed.push(mail),
                Err(_) => break,
            }
        }
    }
    handed
        .into_iter()
        .filter_map(|mail| {
            if mail.lease_until > now {
                return Some(mail.item);
            }
            tracing::warn!(
                outbox = mail.item.id,
                "a handed-over mail's lease ran out before it was sent; left to a claim"
            );
            None
        })
        .collect()
}

fn outcome_of_failure(item: &OutboxItem, e: SendError, now: i64) -> SendOutcome {
    match e {
        SendError::Permanent(error) => SendOutcome::Dead { error },
        SendError::Transient(error) => {
            let attempts = item.attempts + 1;
            let at = now + retry_delay(attempts);
            if at > item.give_up_at {
                SendOutcome::Dead {
                    error: format!("gave up after {attempts} attempts; last error: {error}"),
                }
            } else {
                SendOutcome::Retry { at, error }
            }
        }
    }
}

/// A mail that cannot be rendered: a recipient address lettre refuses never will be; a template
/// that fails at render time can be fixed by the operator (a `ui_dir` override, a restart), so
/// that is retried like an SMTP outage until the mail's lifetime runs out.
fn render_failure(item: &OutboxItem, e: ComposeError, now: i64) -> SendOutcome {
    let error = format!("cannot render the mail: {e}");
    let e = match e {
        ComposeError::Template(_) => SendError::Transient(error),
        ComposeError::Build(_) => SendError::Permanent(error),
    };
    outcome_of_failure(item, e, now)
}

fn log_outcome(item: &OutboxItem, outcome: &SendOutcome) {
    let (id, kind, message_id) = (item.id, item.kind.as_str(), item.message_id.map(|m| m.0));
    match outcome {
        SendOutcome::Sent => tracing::debug!(outbox = id, kind, message_id, "delivered"),
        SendOutcome::Retry { at, error } => {
            tracing::warn!(outbox = id, kind, message_id, retry_at = at, %error, "delivery deferred")
        }
        SendOutcome::Dead { error } => {
            tracing::error!(outbox = id, kind, message_id, %error, "delivery dead-lettered")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_within_a_minute_and_is_capped() {
        assert_eq!(retry_delay(1), 30);
        assert_eq!(retry_delay(2), 60);
        assert_eq!(retry_delay(3), 120);
        assert_eq!(retry_delay(8), 3600);
        assert_eq!(retry_delay(1000), 3600);
    }
}
