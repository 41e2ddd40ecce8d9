//! The dashboard against a real SQLite store: keys go through the keymap and `update`, effects
//! run through the real effects runner (the store and the use-cases), results come back as
//! actions. Only the terminal is missing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use formgate::actions::UseCases;
use formgate::app::Services;
use formgate::clock::{Clock, ManualClock};
use formgate::config::forms::FormTable;
use formgate::config::{Config, MailTarget};
use formgate::domain::{ContactForm, Field, FieldValue, MessageId, NewMessage, Status};
use formgate::store::{Audit, Change};
use formgate::tui::action::{Action, Effect, Verb};
use formgate::tui::effects::execute;
use formgate::tui::keymap::action_for;
use formgate::tui::state::{State, Tab, Tone};
use formgate::tui::update::update;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tempfile::TempDir;

const T0: i64 = 1_800_000_000;

struct Dashboard {
    app: State,
    actions: Arc<UseCases>,
    clock: ManualClock,
    dir: TempDir,
}

async fn open(staff_inbox: Option<&str>) -> Dashboard {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("x.db").display());
    let mut config = Config::for_tests(db, MailTarget::Dir(dir.path().join("mail")));
    config.staff_inbox = staff_inbox.into_iter().map(|s| s.parse().unwrap()).collect();
    let clock = ManualClock::new(T0);
    let services = Services::open(&config, Arc::new(clock.clone()), "http://localhost")
        .await
        .unwrap();
    Dashboard {
        app: State::new("alice", T0, 80, 24),
        actions: services.actions,
        clock,
        dir,
    }
}

impl Dashboard {
    /// A visitor's message; `verified` as if they clicked the link.
    async fn message(&self, n: usize, verified: bool) -> MessageId {
        let form = ContactForm {
            name: format!("Visitor {n}"),
            email: format!("v{n}@example.org"),
            subject: Some(format!("Question {n}")),
            message: format!("Hello number {n}"),
            ..Default::default()
        };
        let msg = NewMessage::parse(&form, Some("192.0.2.7".into()), Some("test".into())).unwrap();
        let id = self.actions.submit(msg).await.unwrap().id;
        self.clock.advance(60);
        if verified {
            let change = Change {
                id,
                from: Status::Pending,
                expect_nonce: None,
                to: Status::Verified,
                now: self.clock.now(),
                new_nonce: None,
                confirmed_nonce: None,
                new_verification: None,
                audit: Audit {
                    actor: "visitor".into(),
                    action: "verify",
                    detail: None,
                },
                mails: Vec::new(),
            };
            assert!(self.actions.store().apply(&change).await.unwrap());
        }
        id
    }

    /// Feeds an action in and runs every effect it leads to, as the event loop would.
    async fn act(&mut self, action: Action) -> Vec<Effect> {
        let mut seen = Vec::new();
        let mut next = update(&mut self.app, action);
        while let Some(effect) = next.take() {
            seen.push(effect.clone());
            let Some(action) = execute(&self.actions, &self.app.actor.clone(), effect).await else {
                break;
            };
            next = update(&mut self.app, action);
        }
        seen
    }

    async fn keys(&mut self, keys: &str) -> Vec<Effect> {
        let mut seen = Vec::new();
        for c in keys.chars() {
            let code = match c {
                '\n' => KeyCode::Enter,
                '\t' => KeyCode::Tab,
                c => KeyCode::Char(c),
            };
            if let Some(action) = action_for(KeyEvent::new(code, KeyModifiers::NONE), self.app.mode()) {
                seen.extend(self.act(action).await);
            }
        }
        seen
    }

    async fn tick(&mut self) {
        self.clock.advance(1);
        let now = self.clock.now();
        self.act(Action::Tick(now)).await;
    }

    fn ids(&self) -> Vec<i64> {
        self.app.rows.iter().map(|r| r.id.0).collect()
    }

    fn status(&self) -> (Tone, String) {
        let s = self.app.status.clone().expect("a status line");
        (s.tone, s.text)
    }
}

#[tokio::test]
async fn a_released_message_moves_from_verified_to_released_and_the_counts_follow() {
    let mut d = open(None).await;
    let one = d.message(1, true).await;
    let two = d.message(2, true).await;
    let three = d.message(3, false).await;
    d.tick().await;
    assert_eq!(d.app.tab, Tab::Pending);
    assert_eq!(d.ids(), [three.0]);
    assert_eq!((d.app.count(Status::Pending), d.app.count(Status::Verified)), (1, 2));

    d.keys("2").await;
    assert_eq!(d.ids(), [two.0, one.0], "newest first");
    let effects = d.keys("r").await;
    assert!(
        matches!(&effects[0], Effect::Run { verb: Verb::Release, ids } if ids == &[two]),
        "{effects:?}"
    );
    assert_eq!(
        d.status(),
        (
            Tone::Success,
            format!("released #{two} — no staff_inbox configured, not mailed")
        )
    );
    assert_eq!(d.ids(), [one.0], "gone from Verified at once");
    assert_eq!((d.app.count(Status::Verified), d.app.count(Status::Released)), (1, 1));
    d.keys("3").await;
    assert_eq!(d.ids(), [two.0]);

    // Delete asks first; the trash gets it; u brings it back to Released.
    assert!(d.keys("d").await.is_empty());
    assert!(d.app.confirm.is_some());
    d.keys("y").await;
    assert_eq!(
        d.status(),
        (Tone::Success, format!("moved #{two} to the trash (u restores it)"))
    );
    assert!(d.ids().is_empty());
    d.keys("4").await;
    assert_eq!(d.ids(), [two.0]);
    d.keys("u").await;
    assert_eq!(d.status(), (Tone::Success, format!("restored #{two} to released")));
    assert_eq!(d.app.count(Status::Released), 1);

    // The audit trail in the detail pane names the moderator.
    d.keys("3\n").await;
    let pane = d.app.detail.as_ref().expect("the pane is open");
    let details = pane.details.as_ref().expect("details loaded");
    let trail: Vec<(&str, &str)> = details
        .audit
        .iter()
        .map(|a| (a.actor.as_str(), a.action.as_str()))
        .collect();
    assert_eq!(
        trail,
        [
            ("visitor", "submit"),
            ("visitor", "verify"),
            ("alice", "release"),
            ("alice", "delete"),
            ("alice", "restore")
        ]
    );
}

#[tokio::test]
async fn shift_d_in_an_open_message_sends_its_dead_webhook_again_and_rings_the_webhook_worker() {
    use formgate::mail::queue::{Channel, OutboxState, SendOutcome};
    let mut d = open(Some("Team <team@example.org>")).await;
    let id = d.message(1, true).await;
    let store = d.actions.store().clone();
    let now = d.clock.now();
    crate::support::store::release_to_staff_and_webhook(&store, id, now, "https://hooks.example.com/in", "msg_1").await;
    let error = SendOutcome::Dead {
        error: "HTTP 410 Gone".into(),
    };
    crate::support::store::finish_due(&store, Channel::Webhook, now, error).await;
    let _ = d.actions.webhook_bell().take_rung();

    d.keys("3").await;
    assert_eq!(d.ids(), vec![id.0]);
    assert_eq!(
        d.app.rows[0].mail.as_ref().map(|m| m.kind),
        Some(formgate::mail::queue::MailKind::Webhook),
        "the row shows the dead webhook"
    );
    d.keys("\n").await;
    let pane = d.app.detail.as_ref().expect("the pane is open");
    let shown: Vec<_> = pane
        .details
        .as_ref()
        .unwrap()
        .outbox
        .iter()
        .map(|o| (o.number, o.destination))
        .collect();
    assert_eq!(shown, vec![(1, "verification"), (2, "staff mail"), (3, "webhook")]);

    // None picked: every dead one.
    let effects = d.keys("D").await;
    assert!(effects.contains(&Effect::Redeliver { id, number: None }), "{effects:?}");
    assert_eq!(d.status(), (Tone::Success, format!("#{id}: queued again: 3 webhook")));
    assert!(d.actions.webhook_bell().take_rung(), "the webhook worker is woken");
    let rows = store.outbox_for_message(id).await.unwrap();
    assert_eq!((rows[2].state, rows[2].attempts), (OutboxState::Queued, 0));
    let pane = d.app.detail.as_ref().unwrap();
    assert_eq!(
        pane.details.as_ref().unwrap().outbox[2].delivery,
        formgate::mail::destination::Delivery::Queued,
        "the pane was read again"
    );

    // The first destination, the verification mail, is still queued: it goes by itself.
    d.keys("\tD").await;
    let (tone, text) = d.status();
    assert_eq!(tone, Tone::Error);
    assert!(text.contains("destination 1 is queued"), "{text}");
    assert_eq!(
        store.outbox_for_message(id).await.unwrap()[0].state,
        OutboxState::Queued
    );
    let trail = store.audit_trail(id).await.unwrap();
    assert_eq!(
        trail
            .iter()
            .filter(|a| a.action == "redeliver" && a.actor == "alice")
            .count(),
        1
    );
}

#[tokio::test]
async fn another_moderators_change_shows_at_the_next_tick_and_a_late_release_says_who_was_first() {
    let mut d = open(Some("Team <team@example.org>")).await;
    let one = d.message(1, true).await;
    let two = d.message(2, true).await;
    d.tick().await;
    d.keys("2").await;
    assert_eq!(d.ids(), [two.0, one.0]);

    // Bob, in another terminal, releases #2 (the cursor's) and a new message arrives.
    d.actions.release(two, "bob").await.unwrap();
    let three = d.message(3, true).await;
    d.tick().await;
    assert_eq!(d.ids(), [three.0, one.0], "no key pressed");
    assert_eq!(d.app.cursor, 1, "the cursor stayed on its row");
    assert_eq!(d.app.count(Status::Released), 1);

    // Alice's screen is a tick behind: she releases #1 just after Bob did.
    d.actions.release(one, "bob").await.unwrap();
    d.keys("r").await;
    let (tone, text) = d.status();
    assert_eq!(tone, Tone::Error);
    assert!(
        text.starts_with(&format!("message {one} was already released by bob at ")),
        "{text}"
    );
    assert_eq!(d.ids(), [three.0], "and the screen caught up");

    // A bulk release with a staff inbox: mailed, one confirmation for both.
    let four = d.message(4, true).await;
    d.tick().await;
    assert_eq!(d.ids(), [four.0, three.0]);
    d.keys("a").await;
    assert!(d.keys("r").await.is_empty(), "two messages: the dialog asks first");
    d.keys("y").await;
    assert_eq!(d.status(), (Tone::Success, "2 released".to_string()));
    assert!(d.ids().is_empty());
    assert!(d.app.selected.is_empty());
    assert_eq!(d.app.count(Status::Released), 4);
}

#[tokio::test]
async fn the_filter_searches_the_database_and_pages_are_keyset_pages() {
    let mut d = open(None).await;
    for n in 1..=130 {
        d.message(n, false).await;
    }
    d.tick().await;
    assert_eq!(d.app.rows.len(), 100, "one page, not the whole table");
    assert!(d.app.more);
    let effects = d.keys("G").await;
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Load(r) if r.after.is_some())),
        "{effects:?}"
    );
    assert_eq!(d.app.rows.len(), 130);
    assert!(!d.app.more);
    assert_eq!(d.app.rows.last().unwrap().id, MessageId(1));

    d.keys("/Visitor 12\n").await;
    assert_eq!(d.ids(), [129, 128, 127, 126, 125, 124, 123, 122, 121, 120, 12]);
}

/// Run on demand: `cargo test --test integration tui::the_dashboard -- --ignored --nocapture`.
/// With 100 000 messages every read the dashboard makes should stay a few milliseconds: it never
/// asks for more than a page, the counts, and the screenful it refreshes. (Until `Store::list`
/// walks `messages_by_status` before joining the outbox, SQLite sorts the whole tab for each
/// page, and this fails at ~200 ms a page.)
#[tokio::test]
#[ignore = "seeds 100 000 messages; run on demand"]
async fn the_dashboard_stays_instant_with_100_000_messages() {
    const N: i64 = 100_000;
    let mut d = open(None).await;
    let url = format!("sqlite://{}", d.dir.path().join("x.db").display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    // 10% pending, 10% verified, 10% trash, 70% released; one a minute; a 200-character body.
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO messages (status, name, email, subject, body, ip, user_agent, created_at, updated_at,
                               nonce, verify_expires_at)
         SELECT CASE i % 10 WHEN 0 THEN 'pending' WHEN 1 THEN 'verified' WHEN 2 THEN 'deleted' ELSE 'released' END,
                'Visitor ' || i, 'v' || i || '@example.org', 'Subject ' || i,
                'Message ' || i || ' ' || hex(randomblob(90)), '192.0.2.1', 'seed',
                ?1 - 60 * (?2 - i), ?1, 'n', ?1 + 3600
         FROM n",
    )
    .bind(T0)
    .bind(N)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO outbox (message_id, kind, recipient, sender, message_id_header, state, attempts,
                             created_at, next_attempt_at, give_up_at)
         SELECT id, 'verify', email, 'forms@example.org', '<' || id || '@seed>', 'sent', 1,
                created_at, created_at, created_at FROM messages",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO outbox_payloads (outbox_id, payload) SELECT id, x'00' FROM outbox")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let mut timings: Vec<(String, Duration)> = Vec::new();
    let started = Instant::now();
    d.tick().await;
    timings.push(("first page of Pending + counts".into(), started.elapsed()));
    assert_eq!(d.app.rows.len(), 100);
    let total: i64 = d.app.counts.iter().map(|(_, n)| n).sum();
    assert_eq!(total, N);

    let started = Instant::now();
    d.keys("3").await;
    timings.push(("switch to Released (70 000)".into(), started.elapsed()));
    assert_eq!(d.app.count(Status::Released), 70_000);

    // Twenty pages down, each page read after the previous one's last row.
    for page in 0..20 {
        let started = Instant::now();
        let effects = d.keys("G").await;
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::Load(r) if r.after.is_some())),
            "{effects:?}"
        );
        if page % 5 == 0 {
            timings.push((
                format!("next page at row {}", d.app.rows.len() - 100),
                started.elapsed(),
            ));
        }
    }
    assert_eq!(d.app.rows.len(), 2100);
    let started = Instant::now();
    d.tick().await;
    timings.push(("refresh at row 2100 + counts".into(), started.elapsed()));
    assert_eq!(d.app.rows.len(), 2100);

    let started = Instant::now();
    d.keys("/no such words anywhere\n").await;
    timings.push(("filter matching nothing (scans the tab)".into(), started.elapsed()));
    assert!(d.app.rows.is_empty() && d.app.loaded);

    for (what, took) in &timings {
        println!("{what:<45} {:>6.1} ms", took.as_secs_f64() * 1000.0);
    }
    for (what, took) in &timings {
        let limit = if what.starts_with("filter") { 2000 } else { 250 };
        assert!(took.as_millis() < limit, "{what} took {took:?}");
    }
}

/// A site with two forms: `contact` (the default) and `quote`, both open (every field is kept).
async fn open_with_forms() -> Dashboard {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("x.db").display());
    let mut config = Config::for_tests(db, MailTarget::Dir(dir.path().join("mail")));
    config.default_form = "contact".into();
    config.forms = vec![
        FormTable {
            slug: "contact".into(),
            title: Some("Contact".into()),
            ..FormTable::default()
        },
        FormTable {
            slug: "quote".into(),
            title: Some("Quote requests".into()),
            ..FormTable::default()
        },
    ];
    let clock = ManualClock::new(T0);
    let services = Services::open(&config, Arc::new(clock.clone()), "http://localhost")
        .await
        .unwrap();
    let mut app = State::new("alice", T0, 80, 24);
    app.learn_forms(services.actions.forms());
    Dashboard {
        app,
        actions: services.actions,
        clock,
        dir,
    }
}

impl Dashboard {
    /// A quote request with a company field (the site's second form).
    async fn quote(&self, n: usize, company: &str) -> MessageId {
        let form = ContactForm {
            name: format!("Buyer {n}"),
            email: format!("b{n}@example.org"),
            message: format!("Please quote {n}"),
            ..Default::default()
        };
        let mut msg = NewMessage::parse(&form, None, None).unwrap();
        msg.form = "quote".into();
        msg.fields = vec![Field::new("company", FieldValue::Text(company.into()))];
        let id = self.actions.submit(msg).await.unwrap().id;
        self.clock.advance(60);
        id
    }
}

#[tokio::test]
async fn picking_a_form_narrows_the_rows_and_the_counts_and_the_search_reads_its_fields() {
    let mut d = open_with_forms().await;
    assert!(d.app.several_forms());
    let one = d.message(1, false).await;
    let q1 = d.quote(1, "Acme Anvils").await;
    let two = d.message(2, true).await;
    let q2 = d.quote(2, "Globex").await;
    d.tick().await;
    assert_eq!(d.ids(), [q2.0, q1.0, one.0], "every form's");
    assert_eq!((d.app.count(Status::Pending), d.app.count(Status::Verified)), (3, 1));

    // f, down to `quote`, Enter.
    d.keys("fjj").await;
    assert_eq!(d.app.form_picker, Some(2), "All forms, contact, quote");
    let effects = d.keys("\n").await;
    assert!(
        matches!(&effects[0], Effect::Load(r) if r.form.as_deref() == Some("quote")),
        "{effects:?}"
    );
    assert_eq!(d.app.form.as_deref(), Some("quote"));
    assert_eq!(d.ids(), [q2.0, q1.0]);
    assert_eq!(
        (d.app.count(Status::Pending), d.app.count(Status::Verified)),
        (2, 0),
        "the counts follow the form"
    );
    d.keys("2").await;
    assert!(d.ids().is_empty(), "no verified quote request");
    d.keys("1").await;

    // The search meets the form's own fields, within the form picked.
    d.keys("/anvils\n").await;
    assert_eq!(d.ids(), [q1.0]);
    d.keys("\n").await;
    let pane = d.app.detail.as_ref().expect("the pane is open");
    let fields = &pane.details.as_ref().expect("details loaded").message.fields;
    assert_eq!(fields, &[Field::new("company", FieldValue::Text("Acme Anvils".into()))]);
    d.act(Action::Back).await;
    d.act(Action::Back).await;
    assert_eq!((d.app.filter.as_deref(), d.ids()), (None, vec![q2.0, q1.0]));

    // Back to every form.
    d.keys("fg\n").await;
    assert_eq!(d.app.form, None);
    assert_eq!(d.ids(), [q2.0, q1.0, one.0]);
    assert_eq!(d.app.count(Status::Pending), 3);
    d.keys("2").await;
    assert_eq!(d.ids(), [two.0]);
}

/// The whole dashboard over a byte stream, as a remote terminal drives it: bytes in (parsed by
/// `tui::input`, split mid-sequence as network packets may be), frames out to a fixed-size
/// backend that learns its size only from resize events. A message is released through the
/// confirm dialog, the audit names the session's actor, a resize redraws at the new size, `q`
/// ends the session.
#[tokio::test]
async fn the_dashboard_runs_over_a_byte_stream() {
    use formgate::tui::input::InputParser;
    use ratatui::backend::TestBackend;
    use ratatui::layout::Rect;
    use ratatui::{Terminal, TerminalOptions, Viewport};

    let d = open(Some("staff@example.org")).await;
    let id = d.message(1, true).await;
    let mut terminal = Terminal::with_options(
        TestBackend::new(80, 24),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, 80, 24)),
        },
    )
    .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let actions = d.actions.clone();
    let typist = async {
        let mut parser = InputParser::new();
        let mut send = |bytes: &[u8]| {
            for event in parser.feed(bytes) {
                tx.send(event).unwrap();
            }
        };
        let pause = || tokio::time::sleep(Duration::from_millis(300));
        pause().await;
        send(b"2"); // the Verified tab
        pause().await;
        send(b"\x1b["); // Down, in two packets
        send(b"B\x1b[A"); // and Up again: on the first row
        send(b"r");
        pause().await;
        send(b"y");
        let deadline = Instant::now() + Duration::from_secs(10);
        while actions.store().message(id).await.unwrap().unwrap().status != Status::Released {
            assert!(Instant::now() < deadline, "released through the dialog");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tx.send(ratatui::crossterm::event::Event::Resize(60, 20)).unwrap();
        pause().await;
        send(b"q");
    };
    let session = formgate::tui::session(
        &mut terminal,
        rx,
        d.actions.clone(),
        "alice".into(),
        false,
        std::future::pending(),
    );
    let (ended, ()) = tokio::join!(session, typist);
    ended.unwrap();
    let area = terminal.get_frame().area();
    assert_eq!((area.width, area.height), (60, 20), "drawn at the new size");
    let screen = terminal.backend().buffer().clone();
    let text: String = screen.content.iter().map(|c| c.symbol()).collect();
    assert!(text.contains("Released"), "{text}");
    let trail = d.actions.store().audit_trail(id).await.unwrap();
    let release = trail.iter().find(|a| a.action == "release").expect("a release line");
    assert_eq!(release.actor, "alice");
}
