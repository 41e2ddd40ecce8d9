//! Group commit (`formgate::intake`, `Store::insert_batch`) on every backend: a batch decides exactly
//! as the same posts one transaction each would, a post whose data fails is refused alone, and
//! hundreds of concurrent posts each come back with their own message, mail and audit line.

use std::sync::Arc;

use formgate::domain::MailGuard;
use formgate::domain::{ContactForm, MessageId, NewMessage, Status};
use formgate::intake::{IntakeQueue, MakeMail, NewSubmission};
use formgate::mail::handover::{WorkerBell, handover};
use formgate::mail::queue::{Channel, MailBody, MailKind, OutboxItem, OutgoingMail, VerificationLink};
use formgate::store::{PgStore, SharedStore, SqliteStore, StoreError, Submission};

use crate::support::pg::TestDatabase;

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn message(i: usize, email: &str) -> NewMessage {
    let form = ContactForm {
        name: format!("Visitor {i}"),
        email: email.to_string(),
        message: format!("Message number {i}"),
        ..Default::default()
    };
    NewMessage::parse(&form, Some("192.0.2.1".into()), None).unwrap()
}

/// A verification mail as the use-cases queue it (unrendered, its link kept) for even ids, and a
/// rendered one for odd ids: a batch stores both kinds of row.
fn mail_for(to: &str, id: MessageId) -> OutgoingMail {
    let body = if id.0 % 2 == 0 {
        MailBody::Verification(VerificationLink {
            nonce: format!("link-{}", id.0),
            expires_at: T0 + DAY + id.0,
        })
    } else {
        MailBody::Rendered(format!("To: {to}\r\nSubject: message {}\r\n\r\nconfirm\r\n", id.0).into_bytes())
    };
    OutgoingMail {
        kind: MailKind::Verify,
        recipient: to.to_string(),
        sender: "forms@example.org".into(),
        message_id_header: format!("<verify.{}@example.org>", id.0),
        body,
        give_up_at: T0 + 3 * DAY,
    }
}

async fn sqlite() -> (tempfile::TempDir, SharedStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("intake.db").display());
    (dir, Arc::new(SqliteStore::open(&url).await.unwrap()))
}

/// One batch: a suppressed address, two posts to one address under a cap of one, a bot's post.
async fn one_batch_decides_like_separate_posts(store: SharedStore) {
    assert!(store.suppress("Gone@Example.org", T0, "test").await.unwrap());
    let guard = MailGuard {
        per_address: Some((1, DAY)),
        per_hour: Some(100),
    };
    let posts = [
        message(0, "first@example.org"),
        message(1, "gone@example.org"),
        message(2, "twice@example.org"),
        message(3, "TWICE@example.org"),
        message(4, "bot@example.org"),
    ];
    let nonces: Vec<String> = (0..posts.len()).map(|i| format!("nonce-{i}")).collect();
    let renders: Vec<MakeMail> = posts
        .iter()
        .map(|m| {
            let to = m.email.as_str().to_string();
            Box::new(move |id| Ok(mail_for(&to, id))) as MakeMail
        })
        .collect();
    let batch: Vec<Submission<'_>> = posts
        .iter()
        .enumerate()
        .map(|(i, m)| Submission {
            msg: m,
            now: T0,
            nonce: &nonces[i],
            verify_expires_at: T0 + DAY,
            spam: (i == 4).then_some("filled the hidden field"),
            mail: &*renders[i],
        })
        .collect();
    let inserted = store.insert_batch(&batch, &guard, None).await.unwrap();
    assert_eq!(inserted.len(), 5, "one answer per post, in order");

    let mut ids: Vec<i64> = inserted.iter().map(|i| i.id.0).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5, "five messages: {inserted:?}");
    assert_eq!(inserted[0].withheld, None);
    assert!(
        inserted[1].withheld.unwrap().to_string().contains("suppressed"),
        "{:?}",
        inserted[1]
    );
    assert_eq!(inserted[2].withheld, None, "the first post to an address is mailed");
    assert!(
        inserted[3].withheld.unwrap().to_string().contains("already mailed"),
        "the second, in the same batch and spelt in capitals, counts against the cap: {:?}",
        inserted[3]
    );
    assert_eq!(
        inserted[4].withheld, None,
        "spam is not withheld: it is never mailed at all"
    );

    // Each post's rows: its own message, its own audit line, a mail only where one was allowed.
    for (i, ins) in inserted.iter().enumerate() {
        let m = store.message(ins.id).await.unwrap().unwrap();
        assert_eq!(m.email, posts[i].email.as_str(), "post {i} got its own row");
        assert_eq!(m.nonce, nonces[i]);
        let expected = if i == 4 { Status::Spam } else { Status::Pending };
        assert_eq!(m.status, expected, "post {i}");
        let audit = store.audit_trail(ins.id).await.unwrap();
        assert_eq!(audit.len(), 1, "post {i}: {audit:?}");
        assert_eq!(audit[0].action, "submit");
        let outbox = store.outbox_for_message(ins.id).await.unwrap();
        let mailed = matches!(i, 0 | 2);
        assert_eq!(outbox.len(), usize::from(mailed), "post {i}: {outbox:?}");
        if mailed {
            assert_eq!(
                outbox[0].message_id_header,
                format!("<verify.{}@example.org>", ins.id.0)
            );
        }
        match i {
            1 | 3 => assert!(audit[0].detail.as_deref().unwrap().starts_with("verification withheld")),
            4 => assert!(audit[0].detail.as_deref().unwrap().contains("bot filter")),
            _ => assert_eq!(audit[0].detail, None),
        }
    }

    // The queued mails come back as made for their own ids: the link to render, or the bytes.
    let claimed = store.claim_outbox("w", T0, T0 + 60, 10, Channel::Mail).await.unwrap();
    assert_eq!(claimed.len(), 2);
    for item in &claimed {
        let id = item.message_id.unwrap();
        assert_eq!(item.body, mail_for(&item.recipient, id).body);
        assert_eq!(item.created_at, T0);
    }

    // A later batch sees what earlier ones queued: the hourly cap counts across batches.
    let tight = MailGuard {
        per_address: None,
        per_hour: Some(3),
    };
    let late = [message(5, "late1@example.org"), message(6, "late2@example.org")];
    let render = |id: MessageId| Ok(mail_for("late@example.org", id));
    let batch: Vec<Submission<'_>> = late
        .iter()
        .enumerate()
        .map(|(i, m)| Submission {
            msg: m,
            now: T0 + 10,
            nonce: ["late-1", "late-2"][i],
            verify_expires_at: T0 + DAY,
            spam: None,
            mail: &render,
        })
        .collect();
    let inserted = store.insert_batch(&batch, &tight, None).await.unwrap();
    assert_eq!(inserted[0].withheld, None, "two queued before, the third fits");
    assert!(
        inserted[1].withheld.unwrap().to_string().contains("hourly mail limit"),
        "{inserted:?}"
    );
}

fn submission(i: usize, poisoned: bool) -> NewSubmission {
    let to = format!("crowd{i}@example.org");
    NewSubmission {
        msg: message(i, &to),
        now: T0,
        nonce: format!("crowd-nonce-{i}"),
        verify_expires_at: T0 + DAY,
        spam: None,
        mail: Box::new(move |id| {
            if poisoned {
                Err("the template failed for this one".into())
            } else {
                Ok(mail_for(&to, id))
            }
        }),
    }
}

/// 200 posts at once through the queue, one of which cannot be rendered: that one alone fails,
/// every other is stored with its mail.
async fn a_crowd_of_posts_shares_transactions_and_a_bad_one_fails_alone(store: SharedStore) {
    const N: usize = 200;
    const POISONED: usize = 57;
    let queue = Arc::new(IntakeQueue::start(
        store.clone(),
        MailGuard::default(),
        WorkerBell::default(),
        None,
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let queue = queue.clone();
        tasks.spawn(async move { (i, queue.store(submission(i, i == POISONED)).await) });
    }
    let mut ids = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.unwrap();
        match result {
            Ok(inserted) if i != POISONED => {
                assert_eq!(inserted.withheld, None);
                let m = store.message(inserted.id).await.unwrap().unwrap();
                assert_eq!(m.nonce, format!("crowd-nonce-{i}"), "post {i} got its own id back");
                ids.push(inserted.id);
            }
            Err(StoreError::Mail(e)) if i == POISONED => assert!(e.contains("template failed")),
            other => panic!("post {i}: {other:?}"),
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N - 1, "every good post stored once");
    let counts = store.counts().await.unwrap();
    assert_eq!(
        counts,
        vec![(Status::Pending, (N - 1) as i64)],
        "nothing of the bad post was kept"
    );
    let claimed = store.claim_outbox("w", T0, T0 + 60, 1000, Channel::Mail).await.unwrap();
    assert_eq!(claimed.len(), N - 1, "one mail per stored post");
}

/// The hand-over to the local worker: mails queued leased to it arrive in its inbox exactly as a
/// claim would return them; nobody else claims them while the lease holds; once the inbox is full
/// the rest are queued unleased (and the worker told so); and if the worker dies with mails in its
/// inbox, they are claimed by another once the lease runs out.
async fn new_mails_are_handed_to_the_local_worker_leased(store: SharedStore) {
    const N: usize = 120;
    const ROOM: usize = 40;
    const LEASE: i64 = 120;
    let bell = WorkerBell::default();
    let (to_worker, mut inbox) = handover("local-worker", LEASE, ROOM);
    let queue = Arc::new(IntakeQueue::start(
        store.clone(),
        MailGuard::default(),
        bell.clone(),
        Some(to_worker),
    ));
    // The first post alone, so at least one batch fits the inbox: had all N posts formed one
    // batch, larger than the room, nothing would be handed over (a batch is leased whole).
    let first = queue.store(submission(0, false)).await.unwrap();
    assert_eq!(first.leased, None, "the intake keeps the item for the worker");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..N {
        let queue = queue.clone();
        tasks.spawn(async move { queue.store(submission(i, false)).await.unwrap() });
    }
    while let Some(joined) = tasks.join_next().await {
        let inserted = joined.unwrap();
        assert_eq!(inserted.leased, None, "the intake keeps the item for the worker");
    }
    let mut handed: Vec<OutboxItem> = Vec::new();
    while let Ok(mail) = inbox.mails.try_recv() {
        assert_eq!(mail.lease_until, T0 + LEASE);
        handed.push(mail.item);
    }
    assert!(
        !handed.is_empty() && handed.len() <= ROOM,
        "{} handed over",
        handed.len()
    );
    assert_eq!(bell.take_rung(), handed.len() < N, "told when mails went in unleased");
    assert!(!bell.take_rung(), "told once");
    for item in &handed {
        let id = item.message_id.unwrap();
        assert_eq!(item.body, mail_for(&item.recipient, id).body);
        assert_eq!(item.message_id_header, format!("<verify.{}@example.org>", id.0));
        let rows = store.outbox_for_message(id).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, item.id);
        assert_eq!(rows[0].lease_owner.as_deref(), Some("local-worker"));
    }

    // Another worker claims only the mails queued unleased while the lease holds...
    let others = store
        .claim_outbox("other", T0 + 1, T0 + 1 + LEASE, 1000, Channel::Mail)
        .await
        .unwrap();
    assert_eq!(others.len(), N - handed.len());
    assert!(others.iter().all(|o| handed.iter().all(|h| h.id != o.id)));

    // ...and, the local worker having died with its inbox full, the rest once it has run out:
    // the same mails, as the worker would have sent them.
    drop(inbox);
    let after = T0 + LEASE + 1;
    let mut reclaimed = store
        .claim_outbox("other", after, after + LEASE, 1000, Channel::Mail)
        .await
        .unwrap();
    reclaimed.sort_by_key(|i| i.id);
    handed.sort_by_key(|i| i.id);
    assert_eq!(reclaimed, handed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mails_are_handed_over_on_sqlite() {
    let (_dir, store) = sqlite().await;
    new_mails_are_handed_to_the_local_worker_leased(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mails_are_handed_over_on_postgres() {
    let Some(db) = TestDatabase::fresh().await else {
        return;
    };
    new_mails_are_handed_to_the_local_worker_leased(Arc::new(PgStore::open(db.url()).await.unwrap())).await;
}

#[tokio::test]
async fn one_batch_decides_like_separate_posts_on_sqlite() {
    let (_dir, store) = sqlite().await;
    one_batch_decides_like_separate_posts(store).await;
}

#[tokio::test]
async fn one_batch_decides_like_separate_posts_on_postgres() {
    let Some(db) = TestDatabase::fresh().await else {
        return;
    };
    one_batch_decides_like_separate_posts(Arc::new(PgStore::open(db.url()).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_posts_on_sqlite() {
    let (_dir, store) = sqlite().await;
    a_crowd_of_posts_shares_transactions_and_a_bad_one_fails_alone(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_posts_on_postgres() {
    let Some(db) = TestDatabase::fresh().await else {
        return;
    };
    a_crowd_of_posts_shares_transactions_and_a_bad_one_fails_alone(Arc::new(PgStore::open(db.url()).await.unwrap()))
        .await;
}

/// SQLite's log is copied into the database file by the store's own checkpointer, not by some
/// unlucky commit: with the writer's threshold far away (~40 MB), the file still grows soon after
/// a write.
#[tokio::test]
async fn sqlite_copies_its_log_into_the_database_file_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.db");
    let store: SharedStore = Arc::new(
        SqliteStore::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap(),
    );
    // Let a checkpoint take the schema in first, then measure from there.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = std::fs::metadata(&path).unwrap().len();
    let queue = IntakeQueue::start(store.clone(), MailGuard::default(), WorkerBell::default(), None);
    for i in 0..50 {
        queue.store(submission(i, false)).await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = std::fs::metadata(&path).unwrap().len();
        if now > before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {before} bytes: nothing was checkpointed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
