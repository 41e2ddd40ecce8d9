//! A message's destinations as a moderator sees them: each outbox row of the message (the
//! verification mails, the staff mail, the visitor's copy, each webhook) is one delivery with its
//! own state. Pure: `show`, the dashboard's detail pane and its list all decide here how a
//! delivery reads, which one is the worst, and how much of a webhook URL may be shown.

use std::borrow::Cow;

use serde::Serialize;

use super::queue::{MailKind, OutboxRecord, OutboxState};

/// Where a delivery is, in the words the moderator reads (the outbox's own three states, with
/// "queued" told apart by whether it was tried already and whether a worker holds it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Waiting for its first attempt.
    Queued,
    /// A worker holds it right now (claimed, or handed over in memory).
    Sending,
    /// Tried and failed; tried again at `next_attempt_at` until its lifetime ends.
    Retrying,
    Sent,
    /// Given up on: its lifetime ended, or the receiver refused it for good.
    Dead,
}

impl Delivery {
    /// A row's delivery from its columns. A retried row a worker holds again is still retrying:
    /// its last error is what the moderator needs to see.
    pub fn of(state: OutboxState, attempts: i64, leased: bool) -> Delivery {
        match state {
            OutboxState::Sent => Delivery::Sent,
            OutboxState::Dead => Delivery::Dead,
            OutboxState::Queued if attempts > 0 => Delivery::Retrying,
            OutboxState::Queued if leased => Delivery::Sending,
            OutboxState::Queued => Delivery::Queued,
        }
    }

    /// How badly it needs a moderator: the list's mail column shows the delivery that needs one
    /// most. Dead (nobody will try again) > retrying (failing now) > queued (not tried yet) >
    /// sending (being tried) > sent.
    fn severity(self) -> u8 {
        match self {
            Delivery::Dead => 4,
            Delivery::Retrying => 3,
            Delivery::Queued => 2,
            Delivery::Sending => 1,
            Delivery::Sent => 0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Queued => "queued",
            Delivery::Sending => "sending",
            Delivery::Retrying => "retrying",
            Delivery::Sent => "sent",
            Delivery::Dead => "dead",
        }
    }

    /// Whether `redeliver` may queue it again: only once it has ended, one way or the other.
    pub fn ended(self) -> bool {
        matches!(self, Delivery::Sent | Delivery::Dead)
    }
}

/// Of one message's deliveries, oldest first, the index of the one its row in a list stands
/// for: the worst of those that still count (an older verification mail no longer does once a
/// newer one was sent for the same message: it was superseded). Of equally bad ones, the newest.
pub fn worst(deliveries: &[(MailKind, Delivery)]) -> Option<usize> {
    let newest_verify = deliveries.iter().rposition(|(k, _)| *k == MailKind::Verify);
    deliveries
        .iter()
        .enumerate()
        .filter(|(i, (kind, _))| *kind != MailKind::Verify || Some(*i) == newest_verify)
        .max_by_key(|(i, (_, d))| (d.severity(), *i))
        .map(|(i, _)| i)
}

/// What a destination is, as `show` and the detail pane label it.
pub fn label(kind: MailKind) -> &'static str {
    match kind {
        MailKind::Verify => "verification",
        MailKind::Release => "staff mail",
        MailKind::Confirmation => "copy",
        MailKind::Webhook => "webhook",
    }
}

/// A recipient as it may be shown: a mail address as it is; a webhook URL as
/// [`crate::webhook::shown_url`] shows it (no credentials, query or long path secrets).
pub fn shown_recipient(kind: MailKind, recipient: &str) -> Cow<'_, str> {
    if kind != MailKind::Webhook {
        return Cow::Borrowed(recipient);
    }
    match url::Url::parse(recipient) {
        Ok(url) => Cow::Owned(crate::webhook::shown_url(&url)),
        // Not a URL (never queued by formgate): nothing of it is safe to show.
        Err(_) => Cow::Borrowed("(not a URL)"),
    }
}

/// One delivery of a message as `show --json` and the detail pane give it: the outbox row (its
/// recipient as [`shown_recipient`] shows it) with its number and what it is.
#[derive(Clone, Debug, Serialize)]
pub struct Destination {
    /// 1, 2, … in the order they were queued: what `formgate redeliver ID --to N` takes.
    pub number: usize,
    /// `verification`, `staff mail`, `copy` or `webhook`.
    pub destination: &'static str,
    pub delivery: Delivery,
    #[serde(flatten)]
    pub row: OutboxRecord,
}

impl Destination {
    /// A message's outbox rows, oldest first, as its numbered destinations.
    pub fn list(rows: Vec<OutboxRecord>) -> Vec<Destination> {
        rows.into_iter()
            .enumerate()
            .map(|(i, mut row)| {
                row.recipient = shown_recipient(row.kind, &row.recipient).into_owned();
                Destination {
                    number: i + 1,
                    destination: label(row.kind),
                    delivery: Delivery::of(row.state, row.attempts, row.lease_owner.is_some()),
                    row,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Delivery::*;
    use MailKind::*;

    #[test]
    fn the_worst_delivery_is_dead_then_retrying_then_queued_then_sending_then_sent() {
        assert_eq!(worst(&[]), None);
        assert_eq!(worst(&[(Release, Sent), (Webhook, Dead), (Webhook, Retrying)]), Some(1));
        assert_eq!(
            worst(&[(Release, Queued), (Webhook, Retrying), (Webhook, Sent)]),
            Some(1)
        );
        assert_eq!(worst(&[(Release, Sending), (Webhook, Queued)]), Some(1));
        assert_eq!(worst(&[(Release, Sent), (Webhook, Sending)]), Some(1));
        // Equally bad: the newest.
        assert_eq!(worst(&[(Release, Sent), (Webhook, Sent)]), Some(1));
    }

    #[test]
    fn an_older_verification_mail_no_longer_counts() {
        // A dead first mail, then a resend that went out, then the release.
        assert_eq!(worst(&[(Verify, Dead), (Verify, Sent), (Release, Sent)]), Some(2));
        assert_eq!(worst(&[(Verify, Dead), (Verify, Retrying)]), Some(1));
        assert_eq!(worst(&[(Verify, Dead)]), Some(0));
    }

    #[test]
    fn a_queued_row_is_retrying_once_tried_and_sending_while_held() {
        assert_eq!(Delivery::of(OutboxState::Queued, 0, false), Queued);
        assert_eq!(Delivery::of(OutboxState::Queued, 0, true), Sending);
        assert_eq!(Delivery::of(OutboxState::Queued, 2, true), Retrying);
        assert_eq!(Delivery::of(OutboxState::Sent, 1, false), Sent);
        assert_eq!(Delivery::of(OutboxState::Dead, 9, false), Dead);
        assert!(Sent.ended() && Dead.ended() && !Queued.ended() && !Sending.ended() && !Retrying.ended());
    }

    #[test]
    fn a_webhook_url_is_shown_without_its_secrets() {
        assert_eq!(
            shown_recipient(
                Webhook,
                "https://user:pw@hooks.example.com:8443/in/forms?token=s3cret#x"
            ),
            "https://hooks.example.com:8443/in/forms"
        );
        assert_eq!(
            shown_recipient(
                Webhook,
                "https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnopqrstuvwx"
            ),
            "https://hooks.slack.com/services/T0001/B0002/abcd…"
        );
        assert_eq!(shown_recipient(Webhook, "no url"), "(not a URL)");
        assert_eq!(shown_recipient(Release, "team@example.org"), "team@example.org");
    }
}
