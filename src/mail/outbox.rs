//! The outbox worker: every mail and every webhook delivery formgate sends goes through here.
//! One worker per channel ([`Channel`]): mails over SMTP lanes, webhooks over HTTP, so that a
//! slow receiver never holds up a verification mail, nor an SMTP outage a webhook.
//!
//! Rows are claimed with a lease in a short write transaction, sent OUTSIDE any transaction over a
//! few reused connections in parallel (lanes that never wait for each other: a connection that
//! hangs holds up only its mail), and their outcomes recorded in batches. New submissions'
//! mails skip the claim: they are queued already leased to this worker and handed to it in memory
//! (`mail::handover`); the outbox is searched for the rest (retries, other instances' mails, mails
//! that found the hand-over full) when that runs dry, when told to, and every `poll`.
//!
//! Leases are short (30 s) and renewed every third of that for the mails the worker holds, so a
//! live worker keeps its mails however long a send takes, and a worker that dies leaves leases
//! that lapse within 30 s; a worker starting on the same machine frees at once the leases of
//! workers whose process is gone. The mail is then sent again by whoever claims it: at-least-once,
//! with the same Message-ID, never lost. On a clean shutdown the worker finishes the mails it is
//! sending and hands back the leases of the ones it had not started.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::compose::ComposeError;
use super::handover::{self, HandedMail, Handover, HandoverInbox, WorkerBell};
use super::queue::{Channel, OutboxItem, SendOutcome};
use super::transport::{Lane, Transport};
use super::verify::VerificationMails;
use crate::clock::SharedClock;
use crate::metrics::{SendClass, metrics};
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

/// One of a worker's parallel senders. (A mail lane is boxed: it holds an SMTP connection's
/// state, a kilobyte and more, and a webhook lane is a pointer.)
enum CourierLane {
    Mail {
        lane: Box<Lane>,
        mails: Arc<VerificationMails>,
    },
    Webhook(Arc<WebhookSender>),
}

impl CourierLane {
    /// One attempt, counted in `formgate_sends_total` and timed.
    async fn deliver(&mut self, item: &OutboxItem, now: i64) -> SendOutcome {
        let started = std::time::Instant::now();
        let (class, outcome) = match self {
            CourierLane::Mail { lane, mails } => match mails.bytes(item) {
                Ok(message) => match lane.send(item, &message).await {
                    Ok(()) => (SendClass::Delivered, SendOutcome::Sent),
                    Err(e) => (
                        e.class(),
                        outcome_of_failure(item, e.is_permanent(), e.to_string(), now),
                    ),
                },
                Err(e) => (SendClass::Unsendable, render_failure(item, e, now)),
            },
            CourierLane::Webhook(sender) => sender.deliver(item, now).await,
        };
        metrics().send(item.kind.as_str(), class, started.elapsed().as_secs_f64());
        outcome
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
    /// How long a claim holds before another worker may take the row; renewed every third of it
    /// while this worker holds the row.
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
            // Renewed every 10 s by the live worker for the mails it holds, so a dead worker's
            // mails go to a survivor within 30 s (and to a restart on this machine at once).
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(2),
            // A few seconds of sending at full speed: well within a lease.
            handover: 1024,
        }
    }
}

/// How long a sent mail's outcome may wait to be recorded with others while lanes are still
/// sending. Each record is a write transaction, and on SQLite every one of them waits for the one
/// writer that intake's group commit also needs: recording each outcome as it came (one
/// transaction per mail under load) cost intake 18% against recording per round. Nothing is
/// lost by waiting: the mail is sent, and a crash meanwhile sends it again, as it would have
/// during the send itself.
const RECORD_LINGER: Duration = Duration::from_millis(100);

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
        let owner = format!(
            "{}:{}:{}:{}",
            this_machine(),
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
    ///
    /// Each lane is a task of its own that sends one mail at a time and reports its outcome;
    /// this loop gives the next mail to whichever lane is free, so a lane stuck on an SMTP server
    /// that does not answer holds up only the mail it carries. Outcomes are recorded in batches
    /// (whatever came in while the previous batch was being written), and every `lease / 3` the
    /// leases of the mails this worker holds are renewed, so a worker that dies leaves leases
    /// that lapse within one `lease`.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let channel = self.courier.channel();
        self.free_leases_of_dead_workers(channel).await;
        let (results_tx, mut results) = mpsc::unbounded_channel();
        let mut lanes = Lanes::start(&self.courier, self.config.lanes.max(1), results_tx, &self.clock);
        let mut inbox = self.inbox.take();
        let batch = usize::try_from(self.config.batch.max(1)).unwrap_or(1);
        let lease = crate::clock::seconds(self.config.lease);
        // Claimed or handed over, not yet given to a lane.
        let mut pending: VecDeque<HandedMail> = VecDeque::new();
        // Sent, outcome not yet recorded; and the batch being recorded.
        let mut outcomes: Vec<(i64, SendOutcome)> = Vec::new();
        let mut recording: Option<(Vec<i64>, JoinHandle<()>)> = None;
        // When the oldest unrecorded outcome is recorded at the latest (see RECORD_LINGER).
        let mut record_by: Option<Instant> = None;
        let mut search_at = Instant::now();
        let mut renew = tokio::time::interval((self.config.lease / 3).max(Duration::from_millis(100)));
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        tracing::info!(owner = %self.owner, channel = channel.as_str(), lanes = lanes.count(), "outbox worker started");
        loop {
            if !stopping {
                self.dispatch(&mut pending, &mut lanes);
            }
            let record_now = outcomes.len() >= batch
                || lanes.busy() == 0
                || stopping
                || record_by.is_some_and(|at| Instant::now() >= at);
            if recording.is_none() && !outcomes.is_empty() && record_now {
                record_by = None;
                let batch: Vec<(i64, SendOutcome)> = std::mem::take(&mut outcomes);
                let ids = batch.iter().map(|(id, _)| *id).collect();
                let (store, owner, clock) = (self.store.clone(), self.owner.clone(), self.clock.clone());
                recording = Some((ids, tokio::spawn(record(store, owner, clock, batch))));
            }
            if stopping && lanes.busy() == 0 && outcomes.is_empty() && recording.is_none() {
                break;
            }
            // Room for more: a lane is free and nothing waits for it.
            let room = !stopping && lanes.free() > pending.len();
            if room {
                take_handed(&mut inbox, &mut pending, batch);
                let missed = self.wake.take_rung();
                if lanes.free() > pending.len() && (missed || Instant::now() >= search_at) {
                    let now = self.clock.now();
                    let limit = batch.saturating_sub(pending.len()).max(1);
                    match self
                        .store
                        .claim_outbox(
                            &self.owner,
                            now,
                            now + lease,
                            i64::try_from(limit).unwrap_or(1),
                            channel,
                        )
                        .await
                    {
                        Ok(claimed) => {
                            let full = claimed.len() >= limit;
                            pending.extend(claimed.into_iter().map(|item| HandedMail {
                                item,
                                lease_until: now + lease,
                            }));
                            // A full claim may have left more behind: look again as soon as there is room.
                            search_at = if full {
                                Instant::now()
                            } else {
                                self.next_search(channel, now, lanes.busy() == 0 && pending.is_empty())
                                    .await
                            };
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "outbox: cannot claim mail; retrying shortly");
                            search_at = Instant::now() + Duration::from_secs(1);
                        }
                    }
                    continue; // dispatch what came
                }
            }
            let room = !stopping && lanes.free() > pending.len();
            // Outcomes waiting for others to be recorded with: until when.
            let linger = record_by.filter(|_| recording.is_none());
            let recorded = async {
                match recording.as_mut() {
                    Some((_, task)) => {
                        let _ = task.await;
                    }
                    None => std::future::pending().await,
                }
            };
            let handed = async {
                match inbox.as_mut() {
                    Some(open) if room => open.mails.recv().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                Some((lane, id, outcome)) = results.recv() => {
                    lanes.done(lane, id);
                    outcomes.push((id, outcome));
                    record_by.get_or_insert_with(|| Instant::now() + RECORD_LINGER);
                }
                () = async { tokio::time::sleep_until(linger.unwrap_or_else(Instant::now)).await },
                    if linger.is_some() => {}
                () = recorded => recording = None,
                mail = handed => match mail {
                    Some(mail) => pending.push_back(mail),
                    None => inbox = None, // every intake is gone: nothing more comes this way
                },
                () = self.wake.rung(), if room => {}
                () = tokio::time::sleep_until(search_at), if room => {}
                _ = renew.tick() => {
                    self.renew(&mut pending, &lanes, &outcomes, recording.as_ref().map(|r| &r.0)).await;
                }
                () = lanes.lost() => {}
                // A dropped sender counts as "stop" too.
                // (the watch's guard dropped at once: it must not live across an await)
                () = async { drop(shutdown.wait_for(|s| *s).await) }, if !stopping => {
                    stopping = true;
                    tracing::info!(in_flight = lanes.busy(), "outbox: finishing the mails in flight");
                }
            }
        }
        lanes.close().await;
        let channel = channel.as_str();
        // Mails still in the inbox or pending are leased to this worker: released with the rest.
        drop(inbox);
        match self.store.release_leases(&self.owner).await {
            Ok(n) => tracing::info!(channel, released = n, "outbox worker stopped"),
            Err(e) => {
                tracing::warn!(channel, error = %e, "outbox worker stopped; its leases will expire by themselves")
            }
        }
    }

    /// Gives pending mails to free lanes. A mail whose lease ran out while it waited is left to
    /// whoever claims it from the outbox: sending it here too could send it twice.
    fn dispatch(&self, pending: &mut VecDeque<HandedMail>, lanes: &mut Lanes) {
        let now = self.clock.now();
        while lanes.free() > 0 {
            let Some(mail) = pending.pop_front() else { break };
            if mail.lease_until <= now {
                tracing::warn!(
                    outbox = mail.item.id,
                    "a mail's lease ran out before it was sent; left to a claim"
                );
                continue;
            }
            lanes.send(mail.item);
        }
    }

    /// When to search the outbox next without being told to: every `poll`, sooner when idle and a
    /// retry falls due before that.
    async fn next_search(&self, channel: Channel, now: i64, idle: bool) -> Instant {
        let mut wait = self.config.poll;
        if idle && let Ok(Some(due)) = self.store.next_outbox_due(channel).await {
            let secs = u64::try_from((due - now).clamp(0, 3600)).unwrap_or(0);
            wait = wait.min(Duration::from_secs(secs));
        }
        Instant::now() + wait.max(Duration::from_millis(50))
    }

    /// Extends the leases of every mail this worker holds: waiting, being sent, or sent and not
    /// yet recorded. A waiting mail whose lease could not be renewed is no longer this worker's.
    async fn renew(
        &self,
        pending: &mut VecDeque<HandedMail>,
        lanes: &Lanes,
        outcomes: &[(i64, SendOutcome)],
        recording: Option<&Vec<i64>>,
    ) {
        let mut ids: Vec<i64> = pending.iter().map(|m| m.item.id).collect();
        ids.extend(lanes.in_flight());
        ids.extend(outcomes.iter().map(|(id, _)| *id));
        ids.extend(recording.into_iter().flatten());
        if ids.is_empty() {
            return;
        }
        let until = self.clock.now() + crate::clock::seconds(self.config.lease);
        match self.store.renew_leases(&self.owner, &ids, until).await {
            Ok(renewed) => {
                let renewed: HashSet<i64> = renewed.into_iter().collect();
                pending.retain_mut(|mail| {
                    let mine = renewed.contains(&mail.item.id);
                    if mine {
                        mail.lease_until = until;
                    } else {
                        tracing::warn!(outbox = mail.item.id, "a waiting mail's lease was lost; not sent here");
                    }
                    mine
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot renew leases; they run out in {:?}", self.config.lease)
            }
        }
    }

    /// Frees, at start, the leases of workers on this machine whose process is gone: a restart
    /// sends a killed instance's mails at once instead of after its leases lapse.
    async fn free_leases_of_dead_workers(&self, channel: Channel) {
        let owners = match self.store.lease_owners(channel).await {
            Ok(owners) => owners,
            Err(e) => {
                tracing::warn!(error = %e, "outbox: cannot look for leases of dead workers");
                return;
            }
        };
        for owner in owners.iter().filter(|o| worker_is_dead(o)) {
            match self.store.release_leases(owner).await {
                Ok(n) => {
                    tracing::info!(dead = %owner, released = n, "outbox: freed the leases of a worker that is gone")
                }
                Err(e) => tracing::warn!(dead = %owner, error = %e, "outbox: cannot free a dead worker's leases"),
            }
        }
    }
}

/// Writes a batch of outcomes, retrying a few times.
#[tracing::instrument(level = "debug", name = "record_sends", skip_all, fields(mails = results.len()))]
async fn record(store: SharedStore, owner: String, clock: SharedClock, results: Vec<(i64, SendOutcome)>) {
    for attempt in 0..5 {
        match store.finish_outbox(&owner, clock.now(), &results).await {
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

/// The worker's lanes, each a task sending the mails it is given one at a time over its own
/// connection and reporting each outcome as `(lane, outbox id, outcome)`.
struct Lanes {
    work: Vec<mpsc::Sender<OutboxItem>>,
    /// The mail each lane is sending (None: free).
    carrying: Vec<Option<i64>>,
    tasks: JoinSet<()>,
    task_lane: HashMap<tokio::task::Id, usize>,
    courier: Courier,
    results: mpsc::UnboundedSender<(usize, i64, SendOutcome)>,
    clock: SharedClock,
}

impl Lanes {
    fn start(
        courier: &Courier,
        n: usize,
        results: mpsc::UnboundedSender<(usize, i64, SendOutcome)>,
        clock: &SharedClock,
    ) -> Lanes {
        let mut lanes = Lanes {
            work: Vec::with_capacity(n),
            carrying: vec![None; n],
            tasks: JoinSet::new(),
            task_lane: HashMap::new(),
            courier: courier.clone(),
            results,
            clock: clock.clone(),
        };
        for i in 0..n {
            let sender = lanes.spawn(i);
            lanes.work.push(sender);
        }
        lanes
    }

    fn spawn(&mut self, index: usize) -> mpsc::Sender<OutboxItem> {
        let (tx, mut rx) = mpsc::channel::<OutboxItem>(1);
        let (mut lane, results, clock) = (self.courier.lane(), self.results.clone(), self.clock.clone());
        let task = self.tasks.spawn(async move {
            while let Some(item) = rx.recv().await {
                let outcome = lane.deliver(&item, clock.now()).await;
                log_outcome(&item, &outcome);
                if results.send((index, item.id, outcome)).is_err() {
                    break;
                }
            }
            lane.close().await;
        });
        self.task_lane.insert(task.id(), index);
        tx
    }

    fn count(&self) -> usize {
        self.work.len()
    }

    fn free(&self) -> usize {
        self.carrying.iter().filter(|c| c.is_none()).count()
    }

    fn busy(&self) -> usize {
        self.count() - self.free()
    }

    fn in_flight(&self) -> impl Iterator<Item = i64> + '_ {
        self.carrying.iter().flatten().copied()
    }

    /// Gives `item` to a free lane (the caller checked there is one).
    fn send(&mut self, item: OutboxItem) {
        let Some(i) = self.carrying.iter().position(Option::is_none) else {
            return;
        };
        self.carrying[i] = Some(item.id);
        // A free lane's queue is empty; a lane that is gone is replaced by `lost`.
        if self.work[i].try_send(item).is_err() {
            tracing::error!(lane = i, "outbox lane cannot take a mail; its lease will run out");
        }
    }

    fn done(&mut self, lane: usize, id: i64) {
        if self.carrying.get(lane).copied().flatten() == Some(id) {
            self.carrying[lane] = None;
        }
    }

    /// Resolves when a lane's task has ended on its own (it panicked), after replacing it. The
    /// mail it carried is left to its lease, which is no longer renewed.
    async fn lost(&mut self) {
        loop {
            let e = match self.tasks.join_next_with_id().await {
                Some(Err(e)) => e,
                Some(Ok(_)) => continue,
                None => return std::future::pending().await,
            };
            let Some(i) = self.task_lane.remove(&e.id()) else {
                continue;
            };
            tracing::error!(error = %e, lane = i, "outbox lane failed");
            self.carrying[i] = None;
            self.work[i] = self.spawn(i);
            return;
        }
    }

    /// Ends every lane once it has sent what it carries, each saying goodbye to its server.
    async fn close(mut self) {
        self.work.clear();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Moves mails from the inbox to `pending`, up to `max` waiting.
fn take_handed(inbox: &mut Option<HandoverInbox>, pending: &mut VecDeque<HandedMail>, max: usize) {
    if let Some(open) = inbox.as_mut() {
        while pending.len() < max {
            match open.mails.try_recv() {
                Ok(mail) => pending.push_back(mail),
                Err(_) => break,
            }
        }
    }
}

/// This machine and process namespace, as a lease owner's name begins: `host/boot/pidns`, where
/// `boot` is the kernel's boot id and `pidns` the process-id namespace. Two workers with the same
/// prefix see the same process ids, so one can tell whether the other's process still exists.
/// Just `host` when /proc does not say (then no lease is ever freed by a process check).
pub fn this_machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    let host = read("/proc/sys/kernel/hostname")
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into())
        .replace([':', '/'], "-");
    let boot = read("/proc/sys/kernel/random/boot_id");
    let pidns = std::fs::read_link("/proc/self/ns/pid").ok().map(|l| {
        l.to_string_lossy()
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
    });
    match (boot, pidns) {
        (Some(boot), Some(ns)) if !boot.is_empty() && !ns.is_empty() => format!("{host}/{boot}/{ns}"),
        _ => host,
    }
}

/// Whether the worker `owner` (a lease owner's name) is provably gone: it ran on this machine,
/// in this process namespace, in another process, and that process no longer exists. Anything
/// else (another machine, an unreadable name, a reused process id) is left to its lease.
fn worker_is_dead(owner: &str) -> bool {
    let mut parts = owner.splitn(3, ':');
    let (Some(machine), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    let here = this_machine();
    here.contains('/')
        && machine == here
        && pid != std::process::id()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn outcome_of_failure(item: &OutboxItem, permanent: bool, error: String, now: i64) -> SendOutcome {
    if permanent {
        return SendOutcome::Dead { error };
    }
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

/// A mail that cannot be rendered: a recipient address lettre refuses never will be; a template
/// that fails at render time can be fixed by the operator (a `ui_dir` override, a restart), so
/// that is retried like an SMTP outage until the mail's lifetime runs out.
fn render_failure(item: &OutboxItem, e: ComposeError, now: i64) -> SendOutcome {
    let error = format!("cannot render the mail: {e}");
    outcome_of_failure(item, matches!(e, ComposeError::Build(_)), error, now)
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
