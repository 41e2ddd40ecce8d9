//! One story over the `Store` trait, run against every backend, so they behave the same by
//! construction; and a race between two stores on one database (two processes, two moderators).
//! A new backend adds its test functions at the bottom.

use std::collections::HashSet;
use std::sync::Arc;

use formgate::domain::{ContactForm, MessageId, NewMessage, Status};
use formgate::mail::queue::{Channel, MailBody, MailKind, OutboxState, OutgoingMail, SendOutcome};
use formgate::store::{Audit, Change, ListQuery, PgStore, SharedStore, SqliteStore};

use crate::support::pg::TestDatabase;

const T0: i64 = 1_800_000_000;

fn new_message(i: usize, body: &str) -> NewMessage {
    let form = ContactForm {
        name: format!("Visitor {i}"),
        email: format!("v{i}@example.org"),
        subject: Some(format!("Subject {i}")),
        message: body.to_string(),
        ..Default::default()
    };
    NewMessage::parse(&form, Some("192.0.2.1".into()), Some("test-agent".into())).unwrap()
}

fn mail(to: &str, n: usize) -> OutgoingMail {
    OutgoingMail {
        kind: MailKind::Verify,
        recipient: to.into(),
        sender: "forms@example.org".into(),
        message_id_header: format!("<m{n}@example.org>"),
        body: MailBody::Rendered(format!("Subject: {n}\r\n\r\nbody\r\n").into_bytes()),
        give_up_at: T0 + 86_400,
    }
}

async fn insert(store: &SharedStore, i: usize, at: i64, body: &str) -> MessageId {
    let msg = new_message(i, body);
    crate::support::store::insert_message(store, &msg, at, &format!("nonce{i}"), at + 3600, &|_| {
        Ok(mail(&format!("v{i}@example.org"), i))
    })
    .await
}

fn change(id: MessageId, from: Status, to: Status, now: i64, nonce: Option<&str>) -> Change {
    Change {
        id,
        from,
        expect_nonce: nonce.map(str::to_owned),
        to,
        now,
        new_nonce: None,
        confirmed_nonce: None,
        new_verification: None,
        audit: Audit {
            actor: "tester".into(),
            action: "test",
            detail: None,
        },
        mails: Vec::new(),
    }
}

pub async fn story(store: SharedStore) {
    store.ping().await.unwrap();

    // Insert: message, audit line and verification mail in one go.
    let id = insert(&store, 1, T0, "first message\nsecond line").await;
    let m = store.message(id).await.unwrap().unwrap();
    assert_eq!(
        (m.status, m.name.as_str(), m.nonce.as_str()),
        (Status::Pending, "Visitor 1", "nonce1")
    );
    assert_eq!(
        (m.ip.as_deref(), m.user_agent.as_deref()),
        (Some("192.0.2.1"), Some("test-agent"))
    );
    assert_eq!(
        (m.verify_expires_at, m.verify_mails, m.code_failures),
        (T0 + 3600, 1, 0)
    );
    assert!(store.message(MessageId(9999)).await.unwrap().is_none());
    let outbox = store.outbox_for_message(id).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!((outbox[0].state, outbox[0].attempts), (OutboxState::Queued, 0));

    // Link opened: recorded once.
    store.record_link_opened(id, T0 + 5).await.unwrap();
    store.record_link_opened(id, T0 + 9).await.unwrap();
    assert_eq!(store.message(id).await.unwrap().unwrap().link_opened_at, Some(T0 + 5));

    // Code failures count against the current nonce only.
    assert_eq!(store.record_code_failure(id, "nonce1").await.unwrap(), 1);
    assert_eq!(store.record_code_failure(id, "nonce1").await.unwrap(), 2);
    assert_eq!(store.record_code_failure(id, "stale").await.unwrap(), i64::MAX);

    // Compare-and-swap: wrong nonce or wrong status changes nothing.
    assert!(
        !store
            .apply(&change(id, Status::Pending, Status::Verified, T0 + 10, Some("stale")))
            .await
            .unwrap()
    );
    assert!(
        !store
            .apply(&change(id, Status::Verified, Status::Released, T0 + 10, None))
            .await
            .unwrap()
    );
    let mut verify = change(id, Status::Pending, Status::Verified, T0 + 10, Some("nonce1"));
    verify.new_nonce = Some("nonce1b".into());
    verify.confirmed_nonce = Some("nonce1".into());
    assert!(store.apply(&verify).await.unwrap());
    assert!(
        !store.apply(&verify).await.unwrap(),
        "the same change twice applies once"
    );
    let m = store.message(id).await.unwrap().unwrap();
    assert_eq!((m.status, m.verified_at), (Status::Verified, Some(T0 + 10)));
    assert_eq!(
        (m.nonce.as_str(), m.confirmed_nonce.as_deref()),
        ("nonce1b", Some("nonce1"))
    );

    // A change can queue a mail in the same transaction; a resend resets code tries.
    let id2 = insert(&store, 2, T0 + 20, "hello 100% _literal_").await;
    let mut resend = change(id2, Status::Pending, Status::Pending, T0 + 30, Some("nonce2"));
    resend.new_nonce = Some("nonce2b".into());
    resend.new_verification = Some(T0 + 9999);
    resend.mails = vec![mail("v2@example.org", 22)];
    store.record_code_failure(id2, "nonce2").await.unwrap();
    assert!(store.apply(&resend).await.unwrap());
    let m2 = store.message(id2).await.unwrap().unwrap();
    assert_eq!(
        (m2.verify_mails, m2.code_failures, m2.verify_expires_at),
        (2, 0, T0 + 9999)
    );
    assert_eq!(store.outbox_for_message(id2).await.unwrap().len(), 2);

    // Delete remembers where it came from; restore clears it.
    assert!(
        store
            .apply(&change(id, Status::Verified, Status::Deleted, T0 + 40, None))
            .await
            .unwrap()
    );
    let m = store.message(id).await.unwrap().unwrap();
    assert_eq!(
        (m.status, m.status_before_delete, m.deleted_at),
        (Status::Deleted, Some(Status::Verified), Some(T0 + 40))
    );
    assert!(
        store
            .apply(&change(id, Status::Deleted, Status::Verified, T0 + 50, None))
            .await
            .unwrap()
    );
    let m = store.message(id).await.unwrap().unwrap();
    assert_eq!(
        (m.status, m.status_before_delete, m.deleted_at),
        (Status::Verified, None, None)
    );

    let trail = store.audit_trail(id).await.unwrap();
    assert_eq!(trail.len(), 4, "submit, verify, delete, restore: {trail:?}");
    assert_eq!(
        (trail[0].action.as_str(), trail[0].from_status, trail[0].to_status),
        ("submit", None, Some(Status::Pending))
    );
    assert_eq!(
        (trail[2].actor.as_str(), trail[2].to_status),
        ("tester", Some(Status::Deleted))
    );

    // Outbox: claim with a lease, exclusive, ordered; finish; retry; dead; release.
    assert_eq!(store.next_outbox_due(Channel::Mail).await.unwrap(), Some(T0));
    let claimed = store
        .claim_outbox("w1", T0 + 100, T0 + 200, 10, Channel::Mail)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.message_id_header.as_str()).collect::<Vec<_>>(),
        ["<m1@example.org>", "<m2@example.org>", "<m22@example.org>"]
    );
    assert_eq!(claimed[0].body, mail("x", 1).body);
    assert!(
        store
            .claim_outbox("w2", T0 + 150, T0 + 250, 10, Channel::Mail)
            .await
            .unwrap()
            .is_empty(),
        "leased rows are not claimed twice"
    );
    assert_eq!(
        store.next_outbox_due(Channel::Mail).await.unwrap(),
        Some(T0 + 201),
        "due once the lease runs out"
    );
    let (a, b, c) = (claimed[0].id, claimed[1].id, claimed[2].id);
    // Another worker's results for rows it does not hold are ignored.
    store
        .finish_outbox("w2", T0 + 101, &[(a, SendOutcome::Sent)])
        .await
        .unwrap();
    assert_eq!(
        store.outbox_for_message(id).await.unwrap()[0].state,
        OutboxState::Queued
    );
    store
        .finish_outbox(
            "w1",
            T0 + 101,
            &[
                (a, SendOutcome::Sent),
                (
                    b,
                    SendOutcome::Retry {
                        at: T0 + 131,
                        error: "451 later".into(),
                    },
                ),
                (c, SendOutcome::Dead { error: "550 no".into() }),
            ],
        )
        .await
        .unwrap();
    let ra = &store.outbox_for_message(id).await.unwrap()[0];
    assert_eq!(
        (ra.state, ra.attempts, ra.sent_at, ra.lease_owner.clone()),
        (OutboxState::Sent, 1, Some(T0 + 101), None)
    );
    let rows2 = store.outbox_for_message(id2).await.unwrap();
    assert_eq!(
        (rows2[0].state, rows2[0].next_attempt_at, rows2[0].last_error.as_deref()),
        (OutboxState::Queued, T0 + 131, Some("451 later"))
    );
    assert_eq!(
        (rows2[1].state, rows2[1].last_error.as_deref()),
        (OutboxState::Dead, Some("550 no"))
    );
    assert!(
        store
            .claim_outbox("w1", T0 + 130, T0 + 230, 10, Channel::Mail)
            .await
            .unwrap()
            .is_empty(),
        "not before it is due"
    );
    let again = store
        .claim_outbox("w3", T0 + 131, T0 + 231, 10, Channel::Mail)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(store.release_leases("w3").await.unwrap(), 1);
    assert_eq!(
        store
            .claim_outbox("w4", T0 + 132, T0 + 232, 10, Channel::Mail)
            .await
            .unwrap()
            .len(),
        1,
        "released leases are claimable at once"
    );

    // Listing: newest first, keyset pages, status filter, literal search, mail state.
    for i in 3..=12 {
        insert(&store, i, T0 + 1000 + i as i64, &format!("body {i}")).await;
    }
    let page1 = store
        .list(&ListQuery {
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page1.iter().map(|m| m.id.0).collect::<Vec<_>>(), [12, 11, 10, 9, 8]);
    let last = page1.last().unwrap();
    let page2 = store
        .list(&ListQuery {
            limit: 5,
            after: Some((last.created_at, last.id)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page2.iter().map(|m| m.id.0).collect::<Vec<_>>(), [7, 6, 5, 4, 3]);
    let verified = store
        .list(&ListQuery {
            status: Some(Status::Verified),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(verified.iter().map(|m| m.id).collect::<Vec<_>>(), [id]);
    assert_eq!(verified[0].preview, "first message\nsecond line");
    assert_eq!(verified[0].mail.as_ref().map(|m| m.state), Some(OutboxState::Sent));
    let hit = |q: &str| {
        let store = store.clone();
        let q = q.to_string();
        async move {
            store
                .list(&ListQuery {
                    search: Some(q),
                    limit: 50,
                    ..Default::default()
                })
                .await
                .unwrap()
                .iter()
                .map(|m| m.id.0)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(hit("100%").await, [2], "search in the body, % taken literally");
    assert_eq!(hit("_literal_").await, [2]);
    assert_eq!(hit("v11@EXAMPLE").await, [11], "case-insensitive, in the email");
    assert_eq!(hit("Visitor 12").await, [12]);
    assert_eq!(hit("%").await, [2], "a lone % is literal too");
    assert!(hit("\\").await.is_empty(), "so is a backslash");
    let dead = store
        .list(&ListQuery {
            search: Some("hello".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        dead[0].mail.as_ref().map(|m| (m.state, m.last_error.clone())),
        Some((OutboxState::Dead, Some("550 no".into()))),
        "the newest mail's state"
    );

    let mut counts = store.counts().await.unwrap();
    counts.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(counts, [(Status::Pending, 11), (Status::Verified, 1)]);

    // Purge: old trash and old never-verified messages, with their mail and audit.
    assert!(
        store
            .apply(&change(MessageId(3), Status::Pending, Status::Deleted, T0 + 2000, None))
            .await
            .unwrap()
    );
    let purged = store.purge(T0 + 2001, T0 + 1005).await.unwrap();
    assert_eq!(
        (purged.trashed, purged.unverified),
        (1, 2),
        "#3 from the trash; #2 and #4 never verified (#5 is at the cut-off, which is exclusive)"
    );
    assert!(store.message(MessageId(3)).await.unwrap().is_none());
    assert!(store.outbox_for_message(MessageId(2)).await.unwrap().is_empty());
    assert!(store.audit_trail(MessageId(3)).await.unwrap().is_empty());
    assert!(
        store.message(id).await.unwrap().is_some(),
        "verified messages are never purged"
    );

    // Search folds case beyond ASCII on both engines (SQLite's LIKE folds ASCII only), and every
    // character of the query is literal.
    let greeting = insert(&store, 20, T0 + 3000, "Grüße von Élodie ÜNAL, straße 5").await.0;
    let wildcards = insert(&store, 21, T0 + 3001, "pattern a*b?[c] here").await.0;
    assert_eq!(hit("élodie").await, [greeting], "é finds É");
    assert_eq!(hit("ÉLODIE").await, [greeting]);
    assert_eq!(hit("ünal").await, [greeting], "ü finds Ü");
    assert_eq!(hit("Ü").await, [greeting], "no ASCII at all to narrow by");
    assert_eq!(
        hit("GRÜSSE").await,
        Vec::<i64>::new(),
        "ß is not SS: no engine folds that"
    );
    assert_eq!(hit("Straße").await, [greeting]);
    assert_eq!(hit("*b?[c]").await, [wildcards], "GLOB's wildcards are literal");
    assert!(hit("a?b").await.is_empty(), "? matches only a ?");
    assert!(hit("a[*]b").await.is_empty(), "[ is literal");
}

/// Two stores on one database, as two `serve` processes or two moderators' terminals have:
/// racing compare-and-swap changes apply once, racing outbox claims never share a row.
pub async fn race(a: SharedStore, b: SharedStore) {
    const N: usize = 30;
    let mut ids = Vec::new();
    for i in 0..N {
        ids.push((i, insert(&a, i, T0 + i as i64, "race").await));
    }
    for &(i, id) in &ids {
        let nonce = format!("nonce{i}");
        let mut verify = change(id, Status::Pending, Status::Verified, T0 + 100, Some(&nonce));
        verify.new_nonce = Some(format!("{nonce}b"));
        let (x, y) = tokio::join!(a.apply(&verify), b.apply(&verify));
        assert!(
            x.unwrap() ^ y.unwrap(),
            "exactly one of two racing moderators succeeds (message {id:?})"
        );
        let trail = a.audit_trail(id).await.unwrap();
        assert_eq!(trail.len(), 2, "submit and ONE verify: {trail:?}");
    }

    // Claims from both sides at once, a few rows at a time, until the queue is empty.
    let drain = |store: SharedStore, owner: &'static str| async move {
        let mut mine = Vec::new();
        loop {
            let got = store
                .claim_outbox(owner, T0 + 200, T0 + 400, 3, Channel::Mail)
                .await
                .unwrap();
            if got.is_empty() {
                return mine;
            }
            mine.extend(got.iter().map(|item| item.id));
            tokio::task::yield_now().await;
        }
    };
    let (from_a, from_b) = tokio::join!(
        tokio::spawn(drain(a.clone(), "worker-a")),
        tokio::spawn(drain(b.clone(), "worker-b"))
    );
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    let all: HashSet<i64> = from_a.iter().chain(&from_b).copied().collect();
    assert_eq!(
        all.len(),
        from_a.len() + from_b.len(),
        "no row claimed twice: {from_a:?} / {from_b:?}"
    );
    assert_eq!(all.len(), N, "every due row claimed");
}

/// A message's form and fields go in and come back on every engine; the list and the counts
/// narrow to one form; the search reads the fields.
async fn forms_story(store: SharedStore) {
    use formgate::domain::{Field, FieldValue};
    let mut msg = new_message(900, "a quote request");
    msg.form = "quote".into();
    msg.fields = vec![
        Field::new("company", FieldValue::Text("Anvils «Ltd»".into())),
        Field::new("topics", FieldValue::List(vec!["Web".into(), "App".into()])),
        Field::new("consent", FieldValue::Flag(true)),
    ];
    let id = crate::support::store::insert_message(&store, &msg, T0 + 900, "nonce-quote", T0 + 9000, &|_| {
        Ok(mail("v900@example.org", 900))
    })
    .await;
    let m = store.message(id).await.unwrap().unwrap();
    assert_eq!((m.form.as_str(), &m.fields), ("quote", &msg.fields));
    let quote_only = |search: Option<&str>| ListQuery {
        form: Some("quote".into()),
        search: search.map(str::to_owned),
        limit: 50,
        ..Default::default()
    };
    let rows = store.list(&quote_only(None)).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(rows[0].form, "quote");
    let found = store.list(&quote_only(Some("anvils «ltd»"))).await.unwrap();
    assert_eq!(found.len(), 1, "the search reads the fields, any case");
    assert_eq!(
        store.counts_for(Some("quote")).await.unwrap(),
        vec![(Status::Pending, 1)]
    );
    let all: i64 = store.counts_for(None).await.unwrap().iter().map(|(_, n)| n).sum();
    assert!(all > 1, "every form's messages without a filter");
}

#[tokio::test]
async fn the_store_story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("story.db").display()))
        .await
        .unwrap();
    let store: SharedStore = Arc::new(store);
    story(store.clone()).await;
    forms_story(store).await;
}

#[tokio::test]
async fn the_store_story_on_postgres() {
    let Some(db) = TestDatabase::fresh().await else {
        return;
    };
    let store: SharedStore = Arc::new(PgStore::open(db.url()).await.unwrap());
    story(store.clone()).await;
    forms_story(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_race_on_one_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("race.db").display());
    let a = SqliteStore::open(&url).await.unwrap();
    let b = SqliteStore::open(&url).await.unwrap();
    race(Arc::new(a), Arc::new(b)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_race_on_one_postgres_database() {
    let Some(db) = TestDatabase::fresh().await else {
        return;
    };
    let a = PgStore::open(db.url()).await.unwrap();
    let b = PgStore::open(db.url()).await.unwrap();
    race(Arc::new(a), Arc::new(b)).await;
}

#[tokio::test]
async fn postgres_pushes_changes_to_other_instances() {
    let Some(db) = TestDatabase::fresh().await else {
        return;
    };
    let watcher: SharedStore = Arc::new(PgStore::open(db.url()).await.unwrap());
    let writer: SharedStore = Arc::new(PgStore::open(db.url()).await.unwrap());
    let changes = watcher.changes().await.expect("PostgreSQL pushes changes");
    // The first signal says "subscribed; you may have missed something": take it.
    tokio::time::timeout(std::time::Duration::from_secs(5), changes.notified())
        .await
        .expect("subscribed");

    let id = insert(&writer, 1, T0, "hello").await;
    tokio::time::timeout(std::time::Duration::from_secs(1), changes.notified())
        .await
        .expect("an insert by another instance is pushed within a second");

    assert!(
        writer
            .apply(&change(id, Status::Pending, Status::Deleted, T0 + 1, None))
            .await
            .unwrap()
    );
    tokio::time::timeout(std::time::Duration::from_secs(1), changes.notified())
        .await
        .expect("a moderator's change is pushed within a second");

    // A change that did not apply (lost compare-and-swap) notifies nobody.
    assert!(
        !writer
            .apply(&change(id, Status::Pending, Status::Deleted, T0 + 2, None))
            .await
            .unwrap()
    );
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), changes.notified())
            .await
            .is_err(),
        "no signal for a change that did not happen"
    );
}

#[tokio::test]
async fn sqlite_has_no_push_and_watchers_poll() {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(
        SqliteStore::open(&format!("sqlite://{}", dir.path().join("x.db").display()))
            .await
            .unwrap(),
    );
    assert!(store.changes().await.is_none());
}

/// Migration 0009 rebuilds `messages`, `audit` and `outbox`: every row, payload and AUTOINCREMENT
/// high-water mark survives, the cascades still hold, and the statements
/// every submission runs no longer build a temporary b-tree for a CHECK (`OpenEphemeral` in their
/// compiled program: the 3% intake regression that 0009 removes).
#[tokio::test]
async fn sqlite_checks_compile_without_temporary_btrees_after_migration_0009() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let opts = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    let old = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&source).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.as_str() < "0009" {
            std::fs::copy(source.join(&name), old.path().join(&name)).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    for i in 1..=3 {
        sqlx::query(
            "INSERT INTO messages (status, name, email, body, created_at, updated_at, nonce, verify_expires_at, form, fields)
             VALUES ('pending', 'V', ?1, 'kept', 1, 1, 'n', 2, 'quote', '[]')",
        )
        .bind(format!("v{i}@example.org"))
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO audit (message_id, at, actor, action) VALUES (?1, 1, 'visitor', 'submit')")
            .bind(i)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO outbox (message_id, kind, recipient, sender, message_id_header, created_at, next_attempt_at, give_up_at)
             VALUES (?1, 'release', 'staff@example.org', 'f@example.org', '<m>', 1, 1, 2)",
        )
        .bind(i)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO outbox_payloads (outbox_id, payload) VALUES (?1, X'6869')")
            .bind(i)
            .execute(&pool)
            .await
            .unwrap();
    }
    // The newest message was purged: its id must never be handed out again.
    sqlx::query("DELETE FROM messages WHERE id = 3")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = formgate::store::connect(&url).await.expect("migrates");
    drop(store);
    let pool = sqlx::SqlitePool::connect_with(
        <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)
            .unwrap()
            .foreign_keys(true),
    )
    .await
    .unwrap();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM messages WHERE form = 'quote' AND body = 'kept'").await,
        2
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM audit").await,
        2,
        "the purge cascaded before; nothing since"
    );
    assert_eq!(count("SELECT COUNT(*) FROM outbox_payloads").await, 2);
    assert_eq!(
        count("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").await,
        3
    );
    assert_eq!(count("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").await, 3);
    assert_eq!(count("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").await, 3);
    assert_eq!(count("SELECT COUNT(*) FROM pragma_foreign_key_check").await, 0);
    // Cascades still hold: deleting a message takes its audit and outbox rows and payloads along.
    sqlx::query("DELETE FROM messages WHERE id = 1")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM outbox_payloads").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM audit").await, 1);
    // A check still refuses what it refused.
    let bad = sqlx::query("UPDATE messages SET status = 'lost' WHERE id = 2")
        .execute(&pool)
        .await;
    assert!(bad.is_err(), "{bad:?}");

    for statement in [
        "INSERT INTO messages (status, name, email, body, created_at, updated_at, nonce, verify_expires_at)
         VALUES ('pending', 'V', 'v@example.org', 'b', 1, 1, 'n', 2)",
        "UPDATE messages SET status = 'verified', status_before_delete = NULL WHERE id = 2",
        "INSERT INTO outbox (message_id, kind, recipient, sender, message_id_header, created_at, next_attempt_at, give_up_at)
         VALUES (2, 'verify', 'v@example.org', 'f@example.org', '<m>', 1, 1, 2)",
        "UPDATE outbox SET state = 'sent' WHERE id = 2",
    ] {
        let program = sqlx::query(&format!("EXPLAIN {statement}"))
            .fetch_all(&pool)
            .await
            .unwrap();
        let ephemeral = program
            .iter()
            .filter(|op| op.get::<String, _>("opcode") == "OpenEphemeral")
            .count();
        assert_eq!(ephemeral, 0, "{statement}");
    }
}
