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
