//! What both backends do around a batch insert besides their SQL: which addresses to look up,
//! the mail cap's verdicts (decided in `domain::mail_cap`), the mails to queue, and the answer.

use std::collections::{HashMap, HashSet};

use super::error::StoreError;
use super::records::{Inserted, Submission};
use crate::domain::{AddressLookup, MailGuard, MessageId, Withheld, batch_verdicts};
use crate::mail::handover::Lease;
use crate::mail::queue::{OutboxItem, OutgoingMail};

/// The distinct addresses of a batch's posts that may be mailed (spam never is).
pub(super) fn mailable_addresses(batch: &[Submission<'_>]) -> Vec<String> {
    let mut seen = HashSet::new();
    batch
        .iter()
        .filter(|s| s.spam.is_none())
        .map(|s| s.msg.email.as_str())
        .filter(|a| seen.insert(*a))
        .map(str::to_owned)
        .collect()
}

/// The batch lookup's per-address parameters: whether the cap is on, and the time its window
/// starts (mails queued after it count).
pub(super) fn per_address_window(guard: &MailGuard, now: i64) -> (bool, i64) {
    match guard.per_address {
        Some((_, window)) => (true, now - window),
        None => (false, now),
    }
}

/// A backend's lookup rows (address as posted, as lower-cased, suppressed, recent mails, mails in
/// the last hour) as lookups and the hourly count.
pub(super) fn lookups_from_rows(
    rows: Vec<(String, String, bool, i64, i64)>,
    guard: &MailGuard,
) -> (Vec<AddressLookup>, Option<i64>) {
    // The hourly count is the same on every row (and unused with no rows: nothing to mail).
    let last_hour = guard.per_hour.map(|_| rows.first().map_or(0, |r| r.4));
    let lookups = rows
        .into_iter()
        .map(|(address, key, suppressed, recent, _)| AddressLookup {
            address,
            key,
            suppressed,
            recent,
        })
        .collect();
    (lookups, last_hour)
}

/// The guard's verdict on each submission of a batch, in order (spam is never mailed).
pub(super) fn verdicts(
    guard: &MailGuard,
    batch: &[Submission<'_>],
    lookups: Vec<AddressLookup>,
    last_hour: Option<i64>,
) -> Vec<Option<Withheld>> {
    let posts: Vec<Option<&str>> = batch
        .iter()
        .map(|s| s.spam.is_none().then_some(s.msg.email.as_str()))
        .collect();
    batch_verdicts(guard, &posts, lookups, last_hour)
}

/// Each post's verification mail, where one may go out.
pub(super) fn batch_mails(
    batch: &[Submission<'_>],
    ids: &[MessageId],
    withheld: &[Option<Withheld>],
) -> Result<Vec<(MessageId, i64, OutgoingMail)>, StoreError> {
    let mut mails = Vec::new();
    for ((s, id), w) in batch.iter().zip(ids).zip(withheld) {
        if s.spam.is_none() && w.is_none() {
            mails.push((*id, s.now, (s.mail)(*id).map_err(StoreError::Mail)?));
        }
    }
    Ok(mails)
}

/// Each post's audit detail: why it was not mailed, if it was not.
pub(super) fn audit_details(batch: &[Submission<'_>], withheld: &[Option<Withheld>]) -> Vec<Option<String>> {
    batch
        .iter()
        .zip(withheld)
        .map(|(s, w)| s.audit_detail(w.as_ref()))
        .collect()
}

/// A batch's answer. `outbox_ids` pairs each stored mail's message with its outbox row; with a
/// lease, the mails come back as the items their worker sends.
pub(super) fn inserted(
    ids: Vec<MessageId>,
    withheld: Vec<Option<Withheld>>,
    mails: Vec<(MessageId, i64, OutgoingMail)>,
    outbox_ids: &[(MessageId, i64)],
    lease: Option<&Lease>,
) -> Result<Vec<Inserted>, StoreError> {
    let mut leased: HashMap<MessageId, OutboxItem> = HashMap::new();
    if lease.is_some() {
        let rows: HashMap<MessageId, i64> = outbox_ids.iter().copied().collect();
        for (message_id, created_at, mail) in mails {
            let id = *rows
                .get(&message_id)
                .ok_or_else(|| StoreError::Corrupt(format!("no outbox row came back for message {}", message_id.0)))?;
            leased.insert(message_id, OutboxItem::queued(id, message_id, created_at, mail));
        }
    }
    Ok(ids
        .into_iter()
        .zip(withheld)
        .map(|(id, withheld)| Inserted {
            id,
            withheld,
            leased: leased.remove(&id),
        })
        .collect())
}
