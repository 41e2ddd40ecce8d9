//! Calls into the store that tests make often.

use formgate::domain::{MailGuard, MessageId, NewMessage};
use formgate::store::{MailForId, SharedStore, Submission};

/// Stores one new pending message with its verification mail: `Store::insert_batch` for a batch
/// of one, no caps, no lease.
pub async fn insert_message(
    store: &SharedStore,
    msg: &NewMessage,
    now: i64,
    nonce: &str,
    verify_expires_at: i64,
    mail: MailForId<'_>,
) -> MessageId {
    let one = Submission {
        msg,
        now,
        nonce,
        verify_expires_at,
        spam: None,
        mail,
    };
    let inserted = store
        .insert_batch(std::slice::from_ref(&one), &MailGuard::default(), None)
        .await
        .unwrap();
    assert_eq!(inserted.len(), 1, "one answer for a batch of one");
    inserted[0].id
}

/// Releases verified message `id` as a release to a staff inbox and one webhook does: the staff
/// mail and a webhook delivery to `url` (webhook-id `webhook_id`) queued in the release's
/// transaction, through the store's own `apply`.
pub async fn release_to_staff_and_webhook(store: &SharedStore, id: MessageId, now: i64, url: &str, webhook_id: &str) {
    use formgate::domain::Status;
    use formgate::mail::queue::{MailBody, MailKind, OutgoingMail};
    use formgate::store::{Audit, Change};
    let mail = |kind, recipient: &str, sender: &str, header: &str, body: &[u8]| OutgoingMail {
        kind,
        recipient: recipient.into(),
        sender: sender.into(),
        message_id_header: header.into(),
        body: MailBody::Rendered(body.to_vec()),
        give_up_at: now + 3600,
    };
    let change = Change {
        id,
        from: Status::Verified,
        expect_nonce: None,
        to: Status::Released,
        now,
        new_nonce: None,
        confirmed_nonce: None,
        new_verification: None,
        audit: Audit {
            actor: "alice".into(),
            action: "release",
            detail: None,
        },
        mails: vec![
            mail(
                MailKind::Release,
                "team@example.org",
                "forms@example.org",
                "<release@example.org>",
                b"Subject: a message\r\n\r\nHello\r\n",
            ),
            mail(
                MailKind::Webhook,
                url,
                "contact",
                webhook_id,
                br#"{"type":"message.released"}"#,
            ),
        ],
    };
    assert!(store.apply(&change).await.unwrap(), "released");
}

/// Claims every due row of `channel` as a worker would and records `outcome` for each; returns
/// what was claimed.
pub async fn finish_due(
    store: &SharedStore,
    channel: formgate::mail::queue::Channel,
    now: i64,
    outcome: formgate::mail::queue::SendOutcome,
) -> Vec<formgate::mail::queue::OutboxItem> {
    let items = store
        .claim_outbox("test-worker", now, now + 60, 100, channel)
        .await
        .unwrap();
    let results: Vec<_> = items.iter().map(|i| (i.id, outcome.clone())).collect();
    store.finish_outbox("test-worker", now, &results).await.unwrap();
    items
}

/// Runs `sql` on the database `database_url` names, over a connection of its own (not the
/// app's pools): what an operator's `sqlite3` or `psql` session would do beside formgate.
#[allow(dead_code)]
pub async fn execute(database_url: &str, sql: &str) {
    use sqlx::Connection;
    if database_url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(database_url)
            .await
            .expect("connect to SQLite");
        sqlx::raw_sql(sql).execute(&mut c).await.expect("SQL runs");
        c.close().await.expect("close");
    } else {
        let mut c = sqlx::PgConnection::connect(database_url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::raw_sql(sql).execute(&mut c).await.expect("SQL runs");
        c.close().await.expect("close");
    }
}
