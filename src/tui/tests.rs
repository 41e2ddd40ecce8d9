//! The screen as a moderator sees it: 80×24 snapshots with a fixed clock and fixed data, and the
//! promise that nothing from the database reaches the terminal as a control sequence.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use super::action::{Action, Verb};
use super::fixtures;
use super::state::{Confirm, DetailPane, State, StatusLine, SuppressedList, Tab, Tone};
use super::update::update;
use super::{safe, view};
use crate::domain::{MessageId, Status};
use crate::store::SuppressedAddress;

fn screen(app: &State) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(app.width, app.height)).unwrap();
    terminal.draw(|frame| view::draw(frame, app)).unwrap();
    terminal
}

fn text_of(buffer: &Buffer) -> String {
    let w = buffer.area.width as usize;
    let symbols: Vec<&str> = buffer.content().iter().map(|c| c.symbol()).collect();
    symbols.chunks(w).map(|row| row.concat()).collect::<Vec<_>>().join("\n")
}

#[test]
fn pending_tab() {
    insta::assert_snapshot!(screen(&fixtures::app(Tab::Pending)).backend());
}

#[test]
fn verified_tab_with_a_selection_and_a_result() {
    let mut app = fixtures::app(Tab::Verified);
    app.selected.insert(MessageId(110));
    app.selected.insert(MessageId(103));
    app.cursor = 1;
    app.status = Some(StatusLine {
        text: "released #104 (mailed to staff)".into(),
        tone: Tone::Success,
    });
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn released_tab() {
    let mut app = fixtures::app(Tab::Released);
    app.cursor = 2;
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn trash_tab() {
    insta::assert_snapshot!(screen(&fixtures::app(Tab::Trash)).backend());
}

#[test]
fn spam_tab() {
    insta::assert_snapshot!(screen(&fixtures::app(Tab::Spam)).backend());
}

#[test]
fn an_empty_filtered_tab() {
    let mut app = fixtures::app(Tab::Verified);
    app.rows.clear();
    app.filter = Some("invoice".into());
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn typing_a_filter() {
    let mut app = fixtures::app(Tab::Pending);
    app.filter_input = Some("quote".into());
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn detail_pane() {
    let mut app = fixtures::app(Tab::Verified);
    app.detail = Some(DetailPane {
        id: MessageId(110),
        details: Some(fixtures::details(110, Status::Verified)),
        error: None,
        scroll: 0,
        destination: None,
    });
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn detail_pane_scrolled_to_the_end() {
    let mut app = fixtures::app(Tab::Verified);
    app.detail = Some(DetailPane {
        id: MessageId(110),
        details: Some(fixtures::details(110, Status::Verified)),
        error: None,
        scroll: 0,
        destination: None,
    });
    update(&mut app, Action::Bottom);
    assert!(app.detail.as_ref().unwrap().scroll > 0);
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn a_picked_destination_in_the_pane() {
    let mut app = fixtures::app(Tab::Verified);
    app.detail = Some(DetailPane {
        id: MessageId(110),
        details: Some(fixtures::details(110, Status::Verified)),
        error: None,
        scroll: 0,
        destination: None,
    });
    update(&mut app, Action::Bottom);
    update(&mut app, Action::PrevDestination);
    assert_eq!(app.detail.as_ref().unwrap().destination, Some(1));
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn confirm_dialog_for_several_messages() {
    let mut app = fixtures::app(Tab::Verified);
    app.selected.extend([MessageId(110), MessageId(108), MessageId(103)]);
    app.confirm = Some(Confirm {
        verb: Verb::Release,
        ids: vec![MessageId(110), MessageId(108), MessageId(103)],
        skipped: 0,
        unsuppress: None,
    });
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn confirm_dialog_for_a_delete() {
    let mut app = fixtures::app(Tab::Pending);
    app.confirm = Some(Confirm {
        verb: Verb::Delete,
        ids: vec![MessageId(112)],
        skipped: 0,
        unsuppress: None,
    });
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn help_overlay() {
    let mut app = fixtures::app(Tab::Pending);
    app.help = true;
    insta::assert_snapshot!(screen(&app).backend());
}

fn suppressed_list() -> SuppressedList {
    let row = |address: &str, ago: i64, reason: &str| SuppressedAddress {
        address: address.into(),
        created_at: fixtures::NOW - ago,
        reason: reason.into(),
    };
    let link = "the recipient said \"I didn't send this\"";
    SuppressedList {
        rows: Some(vec![
            row("stranger@example.org", 3 * 86_400, link),
            row("victim@example.net", 3600, link),
            row(
                "a.very.long.address.that.does.not.fit@subdomain.example.com",
                60,
                "moderator",
            ),
        ]),
        error: None,
        cursor: 1,
    }
}

#[test]
fn suppressed_addresses_overlay() {
    let mut app = fixtures::app(Tab::Pending);
    app.suppressed = Some(suppressed_list());
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn suppressed_addresses_are_shown_safely_and_scroll_with_the_cursor() {
    let mut app = fixtures::app(Tab::Pending);
    let mut list = suppressed_list();
    let rows = list.rows.as_mut().unwrap();
    rows.insert(
        0,
        SuppressedAddress {
            address: format!("x{}@example.org", fixtures::HOSTILE),
            created_at: fixtures::NOW,
            reason: fixtures::HOSTILE.into(),
        },
    );
    for i in 0..40 {
        rows.push(SuppressedAddress {
            address: format!("n{i}@example.org"),
            created_at: fixtures::NOW,
            reason: "test".into(),
        });
    }
    list.cursor = 0;
    app.suppressed = Some(list);
    let top = text_of(screen(&app).backend().buffer());
    assert_clean(screen(&app).backend().buffer());
    assert!(top.contains("xclear\\u{1b}[2J"), "{top}");
    assert!(!top.contains("n39@"), "{top}");
    app.suppressed.as_mut().unwrap().cursor = 43;
    let bottom = text_of(screen(&app).backend().buffer());
    assert!(bottom.contains("n39@"), "{bottom}");
    assert!(!bottom.contains("xclear"), "{bottom}");
    // The dialog names the address safely too.
    app.confirm = Some(Confirm {
        verb: Verb::Resend,
        ids: Vec::new(),
        skipped: 0,
        unsuppress: Some(format!("x{}@example.org", fixtures::HOSTILE)),
    });
    assert_clean(screen(&app).backend().buffer());
}

#[test]
fn database_unavailable() {
    let mut app = fixtures::app(Tab::Released);
    app.db_down = true;
    app.status = Some(StatusLine {
        text: "database error: error returned from database: (code: 14) unable to open database file".into(),
        tone: Tone::Error,
    });
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn a_hostile_message_in_the_pane() {
    let mut app = fixtures::app(Tab::Pending);
    app.rows.insert(0, fixtures::hostile_row(113));
    app.detail = Some(DetailPane {
        id: MessageId(113),
        details: Some(fixtures::hostile_details(113)),
        error: None,
        scroll: 0,
        destination: None,
    });
    insta::assert_snapshot!(screen(&app).backend());
}

/// No cell may hold a character the terminal would act on.
fn assert_clean(buffer: &Buffer) {
    for (i, cell) in buffer.content().iter().enumerate() {
        let sym = cell.symbol();
        assert!(
            !sym.chars().any(|c| c.is_control() || safe::is_unsafe(c)),
            "cell {i} ({}, {}) holds {sym:?}",
            i % buffer.area.width as usize,
            i / buffer.area.width as usize,
        );
    }
}

#[test]
fn escape_sequences_from_the_database_never_reach_the_terminal() {
    let mut app = fixtures::app(Tab::Pending);
    app.rows.insert(0, fixtures::hostile_row(113));
    app.width = 200;
    app.height = 40;
    app.selected.insert(MessageId(113));
    let table = screen(&app);
    assert_clean(table.backend().buffer());
    let shown = text_of(table.backend().buffer());
    // Spelled out, not obeyed, and marked.
    assert!(shown.contains("clear\\u{1b}[2J"), "{shown}");
    assert!(shown.contains("Evil \\u{1b}]0;pwned\\u{7}"), "{shown}");
    let hostile_line = shown.lines().find(|l| l.contains("113")).unwrap();
    assert!(hostile_line.contains(super::text::MARK_FLAGGED), "{hostile_line}");
    let plain_line = shown.lines().find(|l| l.contains("112")).unwrap();
    assert!(!plain_line.contains(super::text::MARK_FLAGGED), "{plain_line}");

    // The pane shows every field, the body line by line; the status line repeats an error
    // that quotes visitor text.
    app.detail = Some(DetailPane {
        id: MessageId(113),
        details: Some(fixtures::hostile_details(113)),
        error: None,
        scroll: 0,
        destination: None,
    });
    app.status = Some(StatusLine {
        text: fixtures::HOSTILE.into(),
        tone: Tone::Error,
    });
    for scroll in 0..=view::detail::max_scroll(&app) {
        if let Some(pane) = app.detail.as_mut() {
            pane.scroll = scroll;
        }
        let pane = screen(&app);
        assert_clean(pane.backend().buffer());
        if scroll == 0 {
            let shown = text_of(pane.backend().buffer());
            assert!(shown.contains(super::text::FLAGGED_NOTE), "{shown}");
            assert!(shown.contains("clip\\u{1b}]52;c;cm0gLXJmIH4=\\u{7}"), "{shown}");
            assert!(shown.contains("c1\\u{9b}1;1H bidi\\u{202e}txt.exe"), "{shown}");
        }
    }

    // The filter being typed and the actor's name are shown too.
    app.detail = None;
    app.filter_input = Some("\u{1b}[2J".into());
    app.actor = "mallory\u{1b}]0;x\u{7}".into();
    assert_clean(screen(&app).backend().buffer());
}

#[test]
fn rendering_at_tiny_sizes_does_not_panic() {
    for (w, h) in [(0, 0), (1, 1), (10, 3), (20, 5), (40, 8)] {
        let mut app = fixtures::app(Tab::Pending);
        app.width = w;
        app.height = h;
        app.help = true;
        app.suppressed = Some(suppressed_list());
        app.confirm = Some(Confirm {
            verb: Verb::Delete,
            ids: vec![MessageId(112)],
            skipped: 0,
            unsuppress: None,
        });
        screen(&app);
        app.detail = Some(DetailPane {
            id: MessageId(112),
            details: Some(fixtures::details(112, Status::Pending)),
            error: None,
            scroll: 3,
            destination: None,
        });
        app.db_down = true;
        screen(&app);
        let mut app = fixtures::several_forms_app(Tab::Pending);
        app.width = w;
        app.height = h;
        app.form_picker = Some(3);
        screen(&app);
        app.form_picker = None;
        app.form = Some("quote".into());
        app.detail = Some(DetailPane {
            id: MessageId(112),
            details: Some(fixtures::quote_details(112)),
            error: None,
            scroll: 3,
            destination: None,
        });
        screen(&app);
    }
}

// --- several forms ------------------------------------------------------------------------------

#[test]
fn several_forms_have_a_form_column() {
    let app = fixtures::several_forms_app(Tab::Pending);
    let shown = text_of(screen(&app).backend().buffer());
    assert!(shown.contains("Job applicati…"), "{shown}");
    assert!(shown.contains("events"), "a removed form shows by its slug: {shown}");
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn the_form_picker() {
    let mut app = fixtures::several_forms_app(Tab::Pending);
    app.form_picker = Some(2);
    insta::assert_snapshot!(screen(&app).backend());
    // Opened while a form is shown, that one is marked.
    app.form = Some("jobs".into());
    app.rows.retain(|r| r.form == "jobs");
    let shown = text_of(screen(&app).backend().buffer());
    assert!(shown.contains("• Job applications  jobs"), "{shown}");
    assert!(shown.contains("│   All forms"), "{shown}");
}

#[test]
fn one_form_picked_with_its_counts() {
    let mut app = fixtures::several_forms_app(Tab::Pending);
    app.form = Some("quote".into());
    app.rows.retain(|r| r.form == "quote");
    app.counts = fixtures::quote_counts();
    let shown = text_of(screen(&app).backend().buffer());
    assert!(shown.contains("Pending 2 "), "{shown}");
    assert!(
        shown.contains("1/2"),
        "the position counts the form's messages: {shown}"
    );
    insta::assert_snapshot!(screen(&app).backend());
}

#[test]
fn one_form_picked_with_nothing_in_the_tab() {
    let mut app = fixtures::several_forms_app(Tab::Trash);
    app.form = Some("quote".into());
    app.rows.clear();
    app.counts = fixtures::quote_counts();
    let shown = text_of(screen(&app).backend().buffer());
    assert!(shown.contains("no trashed messages of Quote requests"), "{shown}");
}

#[test]
fn a_quote_request_in_the_pane_lists_its_fields() {
    let mut app = fixtures::several_forms_app(Tab::Pending);
    app.detail = Some(DetailPane {
        id: MessageId(112),
        details: Some(fixtures::quote_details(112)),
        error: None,
        scroll: 0,
        destination: None,
    });
    let buffer = screen(&app).backend().buffer().clone();
    assert_clean(&buffer);
    let shown = text_of(&buffer);
    for line in [
        "#112 pending · Quote requests (quote) · Ada Lovelace",
        "Company: Acme clear\\u{1b}[2J",
        "Budget: 10 000 – 25 000 EUR",
        "What do you need?: Design, Hosting",
        "Send me the newsletter: no",
        "referrer: a friend",
        "Call after 2 pm.",
    ] {
        assert!(shown.contains(line), "{line:?} in\n{shown}");
    }
    let order: Vec<usize> = [
        "Company:",
        "Budget:",
        "What do you need?:",
        "Anything else",
        "Send me",
        "referrer:",
    ]
    .iter()
    .map(|l| shown.find(l).unwrap())
    .collect();
    assert!(order.is_sorted(), "the form's order, then the undeclared: {order:?}");
    assert!(
        shown.contains("⚠ This message contains control"),
        "a hostile field flags the message: {shown}"
    );
    insta::assert_snapshot!(screen(&app).backend());
    for scroll in 0..=view::detail::max_scroll(&app) {
        if let Some(pane) = app.detail.as_mut() {
            pane.scroll = scroll;
        }
        assert_clean(screen(&app).backend().buffer());
    }
}

#[test]
fn the_help_lists_f_only_with_several_forms() {
    let mut app = fixtures::several_forms_app(Tab::Pending);
    app.help = true;
    let shown = text_of(screen(&app).backend().buffer());
    assert!(shown.contains(super::text::FORM_KEY.1), "{shown}");
    let mut one = fixtures::app(Tab::Pending);
    one.help = true;
    let shown = text_of(screen(&one).backend().buffer());
    assert!(!shown.contains(super::text::FORM_KEY.1), "{shown}");
}
