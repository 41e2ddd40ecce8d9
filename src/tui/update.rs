//! `update(&mut State, Action) -> Option<Effect>`: the dashboard's whole behaviour, synchronous and
//! free of I/O, so every key can be tested without a terminal or a database.
//!
//! Paging: rows are read newest first with keyset pages (`ListQuery::after`), never the whole
//! table. The first page has [`PAGE`] rows; the next is read when the cursor comes within a
//! screen of the end. Once a second the rows on screen are read again from the row just above
//! the first one shown (so the cost does not grow with how far down the moderator is), spliced
//! in, and the cursor kept on the message it was on.

use super::action::{Action, Effect, Key, LoadKind, LoadRequest, Loaded, Outcome, Report, Verb, key};
use super::state::{Confirm, DetailPane, Mode, State, StatusLine, SuppressedList, Tab, Tone};
use super::text;
use crate::domain::{MessageId, Status};
use crate::mail::destination::Delivery;

/// Rows in a first or next page.
pub const PAGE: i64 = 100;
/// [`PAGE`] as a row count.
#[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)] // 100 fits every usize
const PAGE_ROWS: usize = PAGE as usize;
/// Rows read beyond the screen on a refresh, so a short scroll shows fresh rows at once.
const REFRESH_MARGIN: usize = 10;
/// How far below a vanished cursor row to look for the next message still there.
const FOLLOWERS: usize = 64;
/// A filter is a search box, not a document.
const MAX_FILTER: usize = 200;

pub fn update(app: &mut State, action: Action) -> Option<Effect> {
    if app.viewer && changes_something(&action) {
        say(app, Tone::Error, text::VIEWER_REFUSED);
        return None;
    }
    match action {
        Action::Quit => return Some(Effect::Quit),
        Action::Resize(w, h) => {
            app.width = w;
            app.height = h;
            app.offset = app.clamped_offset();
            clamp_scroll(app);
            return None;
        }
        Action::Tick(now) => {
            app.now = now;
            return tick(app);
        }
        Action::Loaded(l) => return loaded(app, *l),
        Action::LoadFailed { req, error } => {
            if app.in_flight == Some(req) {
                app.in_flight = None;
                app.db_down = true;
                say(app, Tone::Error, error);
            }
            return None;
        }
        Action::DetailsLoaded { id, result } => {
            if let Some(d) = app.detail.as_mut().filter(|d| d.id == id) {
                match result {
                    Ok(details) => {
                        d.details = Some(*details);
                        d.error = None;
                    }
                    Err(e) => d.error = Some(e),
                }
            }
            clamp_scroll(app);
            return None;
        }
        Action::Done(report) => return done(app, report),
        Action::Redelivered { id, result } => {
            match result {
                Ok(queued) => say(app, Tone::Success, text::redelivered(id, &queued)),
                Err(e) => say(app, Tone::Error, e),
            }
            // The pane shows the new states at once (a load in flight is superseded).
            return Some(if app.loaded { refresh(app) } else { reset(app) });
        }
        Action::SuppressedLoaded(result) => {
            if let Some(list) = app.suppressed.as_mut() {
                match result {
                    Ok(rows) => {
                        list.cursor = list.cursor.min(rows.len().saturating_sub(1));
                        list.rows = Some(rows);
                        list.error = None;
                    }
                    Err(e) => list.error = Some(e),
                }
            }
            return None;
        }
        Action::Unsuppressed { address, result } => {
            match result {
                Ok(true) => say(app, Tone::Success, text::unsuppressed(&address)),
                Ok(false) => say(app, Tone::Info, text::not_suppressed(&address)),
                Err(e) => say(app, Tone::Error, e),
            }
            // The list as it is now (the overlay may have been closed meanwhile).
            return app.suppressed.is_some().then_some(Effect::LoadSuppressed);
        }
        _ => {}
    }
    match app.mode() {
        Mode::Confirm => confirm_mode(app, action),
        Mode::Help => {
            if matches!(action, Action::ToggleHelp) {
                app.help = false;
            }
            None
        }
        Mode::Suppressed => suppressed_mode(app, action),
        Mode::FormPicker => form_picker_mode(app, action),
        Mode::Filter => filter_mode(app, action),
        Mode::Detail => detail_mode(app, action),
        Mode::Normal => normal_mode(app, action),
    }
}

/// The actions that lead to a change (each through its confirm dialog): what a viewer may not do.
fn changes_something(action: &Action) -> bool {
    matches!(action, Action::Verb(_) | Action::Redeliver | Action::Unsuppress)
}

fn say(app: &mut State, tone: Tone, text: impl Into<String>) {
    app.status = Some(StatusLine {
        text: text.into(),
        tone,
    });
}

fn normal_mode(app: &mut State, action: Action) -> Option<Effect> {
    let page = app.visible_rows();
    match action {
        Action::Down => move_to(app, app.cursor.saturating_add(1)),
        Action::Up => move_to(app, app.cursor.saturating_sub(1)),
        Action::Top => move_to(app, 0),
        Action::Bottom => move_to(app, usize::MAX),
        Action::PageDown => {
            app.offset = app.offset.saturating_add(page);
            move_to(app, app.cursor.saturating_add(page))
        }
        Action::PageUp => {
            app.offset = app.offset.saturating_sub(page);
            move_to(app, app.cursor.saturating_sub(page))
        }
        Action::NextTab => switch_tab(app, app.tab.next()),
        Action::PrevTab => switch_tab(app, app.tab.prev()),
        Action::GoTab(tab) => switch_tab(app, tab),
        Action::ToggleSelect => {
            let id = app.current()?.id;
            if !app.selected.remove(&id) {
                app.selected.insert(id);
            }
            say(app, Tone::Info, text::selected(app.selected.len()));
            move_to(app, app.cursor.saturating_add(1))
        }
        Action::SelectAll => {
            if app.rows.iter().all(|r| app.selected.contains(&r.id)) {
                app.selected.clear();
            } else {
                app.selected = app.rows.iter().map(|r| r.id).collect();
            }
            say(app, Tone::Info, text::selected(app.selected.len()));
            None
        }
        Action::Open => {
            let id = app.current()?.id;
            app.detail = Some(DetailPane {
                id,
                details: None,
                error: None,
                scroll: 0,
                destination: None,
            });
            Some(Effect::Details(id))
        }
        Action::Back => {
            if !app.selected.is_empty() {
                app.selected.clear();
                say(app, Tone::Info, text::selected(0));
                None
            } else if app.filter.is_some() {
                app.filter = None;
                Some(reset(app))
            } else {
                None
            }
        }
        Action::Verb(verb) => {
            let targets: Vec<(MessageId, Option<Status>)> = if app.selected.is_empty() {
                app.current().map(|r| (r.id, Some(r.status))).into_iter().collect()
            } else {
                // In the order they are shown.
                app.rows
                    .iter()
                    .filter(|r| app.selected.contains(&r.id))
                    .map(|r| (r.id, Some(r.status)))
                    .collect()
            };
            act(app, verb, targets)
        }
        Action::StartFilter => {
            app.filter_input = Some(app.filter.clone().unwrap_or_default());
            None
        }
        Action::ToggleHelp => {
            app.help = true;
            None
        }
        Action::ToggleSuppressed => open_suppressed(app),
        Action::PickForm => {
            if app.several_forms() {
                let at = app
                    .form
                    .as_deref()
                    .and_then(|slug| app.forms.iter().position(|f| f.slug == slug))
                    .map_or(0, |i| i + 1);
                app.form_picker = Some(at);
            } else {
                say(app, Tone::Info, text::ONE_FORM);
            }
            None
        }
        _ => None,
    }
}

/// The form picker: move, then Enter shows that form's messages (and counts), Esc changes nothing.
fn form_picker_mode(app: &mut State, action: Action) -> Option<Effect> {
    let last = app.forms.len();
    let at = app.form_picker.as_mut()?;
    match action {
        Action::Down => *at = (*at + 1).min(last),
        Action::Up => *at = at.saturating_sub(1),
        Action::PageDown | Action::Bottom => *at = last,
        Action::PageUp | Action::Top => *at = 0,
        Action::Cancel => app.form_picker = None,
        Action::ApplyForm => {
            let chosen = at.checked_sub(1).and_then(|i| app.forms.get(i)).map(|f| f.slug.clone());
            app.form_picker = None;
            if chosen != app.form {
                app.form = chosen;
                return Some(reset(app));
            }
        }
        _ => {}
    }
    None
}

fn open_suppressed(app: &mut State) -> Option<Effect> {
    app.suppressed = Some(SuppressedList::default());
    Some(Effect::LoadSuppressed)
}

/// The suppressed-addresses overlay: move, lift one (through the dialog), close.
fn suppressed_mode(app: &mut State, action: Action) -> Option<Effect> {
    let page = app.body_height().saturating_sub(4).max(1);
    let list = app.suppressed.as_mut()?;
    let last = list.rows.as_ref().map_or(0, |r| r.len().saturating_sub(1));
    match action {
        Action::ToggleSuppressed => app.suppressed = None,
        Action::Down => list.cursor = (list.cursor + 1).min(last),
        Action::Up => list.cursor = list.cursor.saturating_sub(1),
        Action::PageDown => list.cursor = list.cursor.saturating_add(page).min(last),
        Action::PageUp => list.cursor = list.cursor.saturating_sub(page),
        Action::Top => list.cursor = 0,
        Action::Bottom => list.cursor = last,
        Action::Unsuppress => match list.current() {
            Some(row) => {
                app.confirm = Some(Confirm {
                    verb: Verb::Resend,
                    ids: Vec::new(),
                    skipped: 0,
                    unsuppress: Some(row.address.clone()),
                });
            }
            None => say(app, Tone::Info, text::NO_SUPPRESSED),
        },
        _ => {}
    }
    None
}

fn detail_mode(app: &mut State, action: Action) -> Option<Effect> {
    let page = app.body_height().saturating_sub(1).max(1);
    let pane = app.detail.as_mut()?;
    match action {
        Action::Down => pane.scroll = pane.scroll.saturating_add(1),
        Action::Up => pane.scroll = pane.scroll.saturating_sub(1),
        Action::PageDown => pane.scroll = pane.scroll.saturating_add(page),
        Action::PageUp => pane.scroll = pane.scroll.saturating_sub(page),
        Action::Top => pane.scroll = 0,
        Action::Bottom => pane.scroll = usize::MAX,
        Action::Back => {
            app.detail = None;
            return None;
        }
        Action::ToggleHelp => app.help = true,
        Action::ToggleSuppressed => return open_suppressed(app),
        Action::NextDestination | Action::PrevDestination => {
            let count = pane.details.as_ref().map_or(0, |d| d.outbox.len());
            if count > 0 {
                let forward = matches!(action, Action::NextDestination);
                // None sits between the last and the first: "every dead one".
                pane.destination = match (pane.destination, forward) {
                    (None, true) => Some(0),
                    (None, false) => Some(count - 1),
                    (Some(i), true) => (i + 1 < count).then_some(i + 1),
                    (Some(i), false) => i.checked_sub(1),
                };
            }
        }
        Action::Redeliver => return redeliver(app),
        Action::Verb(verb) => {
            let id = pane.id;
            // The status as last read; the use-case checks again either way.
            let status = match &pane.details {
                Some(d) => Some(d.message.status),
                None => app.rows.iter().find(|r| r.id == id).map(|r| r.status),
            };
            return act(app, verb, vec![(id, status)]);
        }
        _ => {}
    }
    clamp_scroll(app);
    None
}

/// `D`: the picked destination, if it has ended; with none picked, every dead one.
fn redeliver(app: &mut State) -> Option<Effect> {
    let pane = app.detail.as_ref()?;
    let id = pane.id;
    let Some(details) = &pane.details else {
        say(app, Tone::Info, text::NOTHING_HERE);
        return None;
    };
    let picked = pane.destination.and_then(|i| details.outbox.get(i));
    let number = match picked {
        Some(d) if !d.delivery.ended() => {
            let why = text::still_under_way(d.number, d.delivery.as_str());
            say(app, Tone::Error, why);
            return None;
        }
        Some(d) => Some(d.number),
        None if !details.outbox.iter().any(|d| d.delivery == Delivery::Dead) => {
            say(app, Tone::Info, text::NOTHING_DEAD);
            return None;
        }
        None => None,
    };
    say(app, Tone::Info, text::redelivering(number));
    Some(Effect::Redeliver { id, number })
}

fn filter_mode(app: &mut State, action: Action) -> Option<Effect> {
    let input = app.filter_input.as_mut()?;
    match action {
        Action::FilterInput(c) if input.chars().count() < MAX_FILTER => input.push(c),
        Action::Paste(text) => {
            let room = MAX_FILTER.saturating_sub(input.chars().count());
            input.extend(text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(room));
        }
        Action::FilterBackspace => {
            input.pop();
        }
        Action::FilterClear => input.clear(),
        Action::FilterCancel => app.filter_input = None,
        Action::FilterApply => {
            let typed = input.trim().to_string();
            app.filter_input = None;
            let filter = (!typed.is_empty()).then_some(typed);
            if filter != app.filter {
                app.filter = filter;
                return Some(reset(app));
            }
        }
        _ => {}
    }
    None
}

fn confirm_mode(app: &mut State, action: Action) -> Option<Effect> {
    match action {
        Action::Confirm => {
            let c = app.confirm.take()?;
            if let Some(address) = c.unsuppress {
                say(app, Tone::Info, text::UNSUPPRESSING);
                return Some(Effect::Unsuppress(address));
            }
            run(app, c.verb, c.ids)
        }
        Action::Cancel => {
            app.confirm = None;
            say(app, Tone::Info, text::CANCELLED);
            None
        }
        _ => None,
    }
}

/// A verb on the chosen messages: at once when it is one non-destructive verb on one message,
/// through the confirm dialog otherwise.
fn act(app: &mut State, verb: Verb, targets: Vec<(MessageId, Option<Status>)>) -> Option<Effect> {
    if targets.is_empty() {
        say(app, Tone::Info, text::NOTHING_HERE);
        return None;
    }
    let total = targets.len();
    let ids: Vec<MessageId> = targets
        .into_iter()
        .filter(|(_, status)| status.is_none_or(|s| verb.allowed_from(s)))
        .map(|(id, _)| id)
        .collect();
    if ids.is_empty() {
        say(app, Tone::Error, text::not_allowed(verb));
        return None;
    }
    let skipped = total - ids.len();
    if super::action::always_confirm(verb) || ids.len() > 1 || skipped > 0 {
        app.confirm = Some(Confirm {
            verb,
            ids,
            skipped,
            unsuppress: None,
        });
        return None;
    }
    run(app, verb, ids)
}

fn run(app: &mut State, verb: Verb, ids: Vec<MessageId>) -> Option<Effect> {
    say(app, Tone::Info, text::running(verb, ids.len()));
    Some(Effect::Run { verb, ids })
}

fn done(app: &mut State, report: Report) -> Option<Effect> {
    let failed = report.results.iter().any(|(_, r)| r.is_err());
    let withheld = report.results.iter().any(|(_, r)| {
        matches!(
            r,
            Ok(Outcome::Resent { no_mail: Some(_) } | Outcome::NotSpam { no_mail: Some(_) })
        )
    });
    let tone = if failed {
        Tone::Error
    } else if withheld {
        // Recorded, but the visitor gets nothing: not a plain success.
        Tone::Info
    } else {
        Tone::Success
    };
    say(app, tone, text::report(&report));
    for (id, result) in &report.results {
        if result.is_ok() {
            app.selected.remove(id);
        }
    }
    // Show the result at once rather than at the next tick (a load in flight is superseded).
    Some(if app.loaded { refresh(app) } else { reset(app) })
}

fn move_to(app: &mut State, row: usize) -> Option<Effect> {
    app.cursor = row.min(app.rows.len().saturating_sub(1));
    app.offset = app.clamped_offset();
    more_if_near_end(app)
}

fn switch_tab(app: &mut State, tab: Tab) -> Option<Effect> {
    if tab == app.tab {
        return None;
    }
    app.tab = tab;
    Some(reset(app))
}

fn tick(app: &mut State) -> Option<Effect> {
    if app.in_flight.is_some() {
        return None;
    }
    Some(if app.loaded { refresh(app) } else { reset(app) })
}

fn request(app: &mut State, kind: LoadKind, after: Option<Key>, limit: usize) -> Effect {
    app.next_req += 1;
    app.in_flight = Some(app.next_req);
    Effect::Load(LoadRequest {
        req: app.next_req,
        kind,
        tab: app.tab,
        filter: app.filter.clone(),
        form: app.form.clone(),
        after,
        limit: i64::try_from(limit).unwrap_or(i64::MAX),
        detail: app.detail.as_ref().map(|d| d.id),
    })
}

/// A new tab or filter: start from the top with nothing chosen.
fn reset(app: &mut State) -> Effect {
    app.rows.clear();
    app.selected.clear();
    app.loaded = false;
    app.more = false;
    app.cursor = 0;
    app.offset = 0;
    request(app, LoadKind::Reset, None, PAGE_ROWS)
}

/// The rows on screen, read again from the row above the first one shown.
fn refresh(app: &mut State) -> Effect {
    app.offset = app.clamped_offset();
    let after = app.offset.checked_sub(1).and_then(|i| app.rows.get(i)).map(key);
    let limit = app.visible_rows() + REFRESH_MARGIN;
    request(app, LoadKind::Refresh, after, limit)
}

fn more_if_near_end(app: &mut State) -> Option<Effect> {
    let near_end = app.cursor + app.visible_rows() >= app.rows.len();
    if !(app.more && app.loaded && near_end && app.in_flight.is_none()) {
        return None;
    }
    let after = app.rows.last().map(key);
    Some(request(app, LoadKind::More, after, PAGE_ROWS))
}

fn loaded(app: &mut State, l: Loaded) -> Option<Effect> {
    if app.in_flight != Some(l.request.req) {
        return None;
    }
    app.in_flight = None;
    if app.db_down {
        app.db_down = false;
        say(app, Tone::Info, text::DB_BACK);
    }
    if l.request.form != app.form {
        // Rows and counts of a form no longer shown (the next load is the current one's).
        return None;
    }
    app.counts = l.counts;
    if l.request.tab != app.tab || l.request.filter != app.filter {
        return None;
    }
    // The cursor's message, then the ones below it: if it is gone (released by someone else,
    // say), the cursor moves to the next one still there, as after acting on it here.
    let followers: Vec<MessageId> = app.rows.iter().skip(app.cursor).take(FOLLOWERS).map(|r| r.id).collect();
    let full = i64::try_from(l.rows.len()).unwrap_or(i64::MAX) >= l.request.limit;
    match l.request.kind {
        LoadKind::Reset => {
            app.rows = l.rows;
            app.more = full;
            app.loaded = true;
            app.cursor = 0;
            app.offset = 0;
        }
        LoadKind::More => {
            if app.rows.last().map(key) == l.request.after {
                app.rows.extend(l.rows);
                app.more = full;
            }
        }
        LoadKind::Refresh => {
            // Rows are newest first: the fresh ones replace every row from just below the
            // anchor down to the last fresh one (or to the end, when the page was not full).
            let start = match l.request.after {
                None => 0,
                Some(anchor) => app.rows.partition_point(|r| key(r) >= anchor),
            };
            let end = match l.rows.last() {
                Some(last) if full => app.rows.partition_point(|r| key(r) >= key(last)),
                _ => app.rows.len(),
            };
            app.rows.splice(start..end.max(start), l.rows);
            if !full {
                app.more = false;
            }
        }
    }
    if l.request.kind != LoadKind::Reset {
        let at: std::collections::HashMap<MessageId, usize> =
            app.rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        if let Some(&i) = followers.iter().find_map(|id| at.get(id)) {
            app.cursor = i;
        }
    }
    app.cursor = app.cursor.min(app.rows.len().saturating_sub(1));
    let shown: std::collections::HashSet<MessageId> = app.rows.iter().map(|r| r.id).collect();
    app.selected.retain(|id| shown.contains(id));
    if let (Some(pane), Some(result)) = (app.detail.as_mut(), l.details)
        && l.request.detail == Some(pane.id)
    {
        match result {
            Ok(d) => {
                pane.details = Some(d);
                pane.error = None;
            }
            Err(e) => pane.error = Some(e),
        }
    }
    app.offset = app.clamped_offset();
    clamp_scroll(app);
    more_if_near_end(app)
}

fn clamp_scroll(app: &mut State) {
    let max = super::view::detail::max_scroll(app);
    if let Some(pane) = app.detail.as_mut() {
        pane.scroll = pane.scroll.min(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::fixtures::{self, NOW};
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn press(app: &mut State, keys: &str) -> Vec<Effect> {
        keys.chars()
            .filter_map(|c| {
                let code = match c {
                    '\n' => KeyCode::Enter,
                    '\x1b' => KeyCode::Esc,
                    '\x08' => KeyCode::Backspace,
                    '\t' => KeyCode::Tab,
                    c => KeyCode::Char(c),
                };
                key(app, code)
            })
            .collect()
    }

    fn key(app: &mut State, code: KeyCode) -> Option<Effect> {
        let action = crate::tui::keymap::action_for(KeyEvent::new(code, KeyModifiers::NONE), app.mode())?;
        update(app, action)
    }

    fn ids(app: &State) -> Vec<i64> {
        app.rows.iter().map(|r| r.id.0).collect()
    }

    /// An app on `tab` showing `n` rows (ids n..1, newest first), after its first load.
    fn app_with(tab: Tab, n: i64) -> State {
        let mut app = State::new("alice", NOW, 80, 24);
        app.tab = tab;
        let Some(Effect::Load(req)) = update(&mut app, Action::Tick(NOW)) else {
            panic!("the first tick loads");
        };
        assert_eq!(req.kind, LoadKind::Reset);
        let rows = (1..=n).rev().map(|i| fixtures::row(i, tab.status())).collect();
        answer(&mut app, req, rows);
        app
    }

    fn answer(app: &mut State, request: LoadRequest, rows: Vec<crate::store::MessageSummary>) -> Option<Effect> {
        let counts = vec![(request.tab.status(), i64::try_from(rows.len()).unwrap_or(i64::MAX))];
        update(
            app,
            Action::Loaded(Box::new(Loaded {
                request,
                rows,
                counts,
                details: None,
            })),
        )
    }

    fn load(effect: Option<Effect>) -> LoadRequest {
        match effect {
            Some(Effect::Load(r)) => r,
            other => panic!("expected a load, got {other:?}"),
        }
    }

    #[test]
    fn j_k_g_and_page_keys_move_the_cursor_within_the_rows() {
        let mut app = app_with(Tab::Verified, 50);
        assert_eq!((app.cursor, app.visible_rows()), (0, 19));
        press(&mut app, "jjj");
        assert_eq!(app.cursor, 3);
        press(&mut app, "k");
        assert_eq!(app.cursor, 2);
        press(&mut app, "kkkk");
        assert_eq!(app.cursor, 0, "stops at the top");
        key(&mut app, KeyCode::PageDown);
        assert_eq!((app.cursor, app.offset), (19, 19));
        press(&mut app, "G");
        assert_eq!((app.cursor, app.offset), (49, 31), "last row, screen filled");
        press(&mut app, "j");
        assert_eq!(app.cursor, 49, "stops at the bottom");
        key(&mut app, KeyCode::PageUp);
        assert_eq!((app.cursor, app.offset), (30, 12));
        press(&mut app, "g");
        assert_eq!((app.cursor, app.offset), (0, 0));
    }

    #[test]
    fn tabs_switch_with_tab_and_digits_and_each_switch_starts_a_fresh_page() {
        let mut app = app_with(Tab::Pending, 3);
        press(&mut app, " ");
        assert_eq!(app.selected.len(), 1);
        let req = load(key(&mut app, KeyCode::Tab));
        assert_eq!(app.tab, Tab::Verified);
        assert_eq!(
            (req.kind, req.tab, req.after, req.limit),
            (LoadKind::Reset, Tab::Verified, None, PAGE)
        );
        assert!(app.rows.is_empty() && app.selected.is_empty() && !app.loaded);
        let req = load(press(&mut app, "4").pop());
        assert_eq!((app.tab, req.tab), (Tab::Trash, Tab::Trash));
        assert!(press(&mut app, "4").is_empty(), "same tab: nothing to do");
        key(&mut app, KeyCode::BackTab);
        assert_eq!(app.tab, Tab::Released);
        press(&mut app, "\t");
        press(&mut app, "\t");
        assert_eq!(app.tab, Tab::Spam);
        press(&mut app, "\t");
        assert_eq!(app.tab, Tab::Pending, "wraps around");
    }

    #[test]
    fn an_answer_to_an_older_request_is_dropped() {
        let mut app = app_with(Tab::Pending, 3);
        let old = load(press(&mut app, "2").pop());
        let new = load(press(&mut app, "3").pop());
        answer(&mut app, old, vec![fixtures::row(9, Status::Verified)]);
        assert!(app.rows.is_empty() && !app.loaded);
        answer(&mut app, new, vec![fixtures::row(7, Status::Released)]);
        assert_eq!(ids(&app), [7]);
    }

    #[test]
    fn space_selects_and_moves_down_and_verbs_act_on_the_selection_through_the_dialog() {
        let mut app = app_with(Tab::Verified, 5);
        press(&mut app, "  j ");
        assert_eq!(app.selected.iter().map(|i| i.0).collect::<Vec<_>>(), [2, 4, 5]);
        assert!(press(&mut app, "r").is_empty(), "three messages: the dialog asks first");
        let c = app.confirm.clone().unwrap();
        assert_eq!(
            (c.verb, c.ids.iter().map(|i| i.0).collect::<Vec<_>>()),
            (Verb::Release, vec![5, 4, 2])
        );
        assert_eq!(app.mode(), Mode::Confirm);
        assert!(press(&mut app, "jd").is_empty(), "other keys do nothing in the dialog");
        let effects = press(&mut app, "y");
        assert_eq!(
            effects,
            [Effect::Run {
                verb: Verb::Release,
                ids: vec![MessageId(5), MessageId(4), MessageId(2)]
            }]
        );
        assert!(app.confirm.is_none());
        press(&mut app, "\x1b");
        assert!(app.selected.is_empty(), "Esc clears the selection");
        press(&mut app, "a");
        assert_eq!(app.selected.len(), 5);
        press(&mut app, "a");
        assert!(app.selected.is_empty());
    }

    #[test]
    fn one_release_acts_at_once_but_delete_always_asks_and_no_cancels() {
        let mut app = app_with(Tab::Verified, 2);
        let effects = press(&mut app, "r");
        assert_eq!(
            effects,
            [Effect::Run {
                verb: Verb::Release,
                ids: vec![MessageId(2)]
            }]
        );
        assert_eq!(app.status.as_ref().unwrap().text, "releasing 1 message…");
        assert!(press(&mut app, "d").is_empty());
        assert_eq!(
            app.confirm.as_ref().map(|c| (c.verb, c.ids.clone())),
            Some((Verb::Delete, vec![MessageId(2)]))
        );
        assert!(press(&mut app, "n").is_empty());
        assert!(app.confirm.is_none());
        assert_eq!(app.status.as_ref().unwrap().text, text::CANCELLED);
        press(&mut app, "d");
        assert_eq!(
            key(&mut app, KeyCode::Enter),
            Some(Effect::Run {
                verb: Verb::Delete,
                ids: vec![MessageId(2)]
            })
        );
    }

    #[test]
    fn a_verb_the_state_machine_forbids_here_is_explained_not_run() {
        let mut app = app_with(Tab::Pending, 2);
        assert!(press(&mut app, "r").is_empty());
        assert!(app.confirm.is_none());
        let status = app.status.clone().unwrap();
        assert_eq!(
            (status.tone, status.text.as_str()),
            (Tone::Error, text::not_allowed(Verb::Release))
        );
        assert_eq!(
            press(&mut app, "s"),
            [Effect::Run {
                verb: Verb::Resend,
                ids: vec![MessageId(2)]
            }]
        );
    }

    #[test]
    fn results_go_to_the_status_line_and_reload_the_page() {
        let mut app = app_with(Tab::Verified, 3);
        press(&mut app, "  ");
        let report = Report {
            verb: Verb::Release,
            results: vec![
                (
                    MessageId(3),
                    Ok(Outcome::Released {
                        mailed: true,
                        to: "team@example.org".into(),
                    }),
                ),
                (MessageId(2), Err("message 2 was already released by bob at Mon".into())),
            ],
        };
        let req = load(update(&mut app, Action::Done(report)));
        assert_eq!(req.kind, LoadKind::Refresh);
        let status = app.status.clone().unwrap();
        assert_eq!(status.tone, Tone::Error);
        assert_eq!(
            status.text,
            "1 released, 1 failed: message 2 was already released by bob at Mon"
        );
        assert_eq!(
            app.selected.iter().map(|i| i.0).collect::<Vec<_>>(),
            [2],
            "the failed one stays chosen"
        );

        let one = |outcome| Report {
            verb: Verb::Release,
            results: vec![(MessageId(4), Ok(outcome))],
        };
        update(
            &mut app,
            Action::Done(one(Outcome::Released {
                mailed: true,
                to: "team@example.org".into(),
            })),
        );
        assert_eq!(app.status.clone().unwrap().text, "released #4 (mailed to staff)");
        update(
            &mut app,
            Action::Done(one(Outcome::Released {
                mailed: false,
                to: String::new(),
            })),
        );
        assert_eq!(
            app.status.clone().unwrap().text,
            "released #4 — no staff_inbox configured, not mailed"
        );
        assert_eq!(app.status.clone().unwrap().tone, Tone::Success);

        let resend = Report {
            verb: Verb::Resend,
            results: vec![(
                MessageId(4),
                Ok(Outcome::Resent {
                    no_mail: Some("the address is suppressed".into()),
                }),
            )],
        };
        update(&mut app, Action::Done(resend));
        let status = app.status.clone().unwrap();
        assert_eq!(
            (status.tone, status.text.as_str()),
            (
                Tone::Info,
                "resend of #4 recorded, but no mail: the address is suppressed"
            )
        );
    }

    #[test]
    fn the_filter_is_typed_then_applied_or_cancelled() {
        let mut app = app_with(Tab::Pending, 3);
        press(&mut app, "/ada");
        assert_eq!(app.mode(), Mode::Filter);
        assert_eq!(app.filter_input.as_deref(), Some("ada"));
        assert_eq!(app.tab, Tab::Pending, "letters and digits are text while typing");
        press(&mut app, "\x08\x08");
        assert_eq!(app.filter_input.as_deref(), Some("a"));
        press(&mut app, "\x1b");
        assert_eq!(
            (app.filter_input.as_deref(), app.filter.as_deref()),
            (None, None),
            "Esc cancels"
        );
        press(&mut app, "/ q2 ");
        let req = load(press(&mut app, "\n").pop());
        assert_eq!(app.filter.as_deref(), Some("q2"), "trimmed");
        assert_eq!((req.kind, req.filter.as_deref()), (LoadKind::Reset, Some("q2")));
        assert_eq!(app.mode(), Mode::Normal);
        press(&mut app, "/");
        assert_eq!(
            app.filter_input.as_deref(),
            Some("q2"),
            "editing starts from the applied filter"
        );
        assert!(press(&mut app, "\n").is_empty(), "unchanged: no reload");
        let req = load(press(&mut app, "\x1b").pop());
        assert_eq!(
            (app.filter.as_deref(), req.filter),
            (None, None),
            "Esc in the table clears the filter"
        );
    }

    #[test]
    fn pasted_text_goes_into_the_filter_and_is_never_taken_as_keys() {
        let mut app = app_with(Tab::Verified, 3);
        assert!(update(&mut app, Action::Paste("dy d y".into())).is_none());
        assert!(
            app.confirm.is_none() && app.filter_input.is_none(),
            "ignored in the table"
        );
        press(&mut app, "/");
        update(&mut app, Action::Paste("ada\n@example".into()));
        assert_eq!(app.filter_input.as_deref(), Some("ada @example"));
    }

    #[test]
    fn help_overlay_opens_closes_and_swallows_other_keys() {
        let mut app = app_with(Tab::Verified, 3);
        press(&mut app, "?");
        assert!(app.help);
        assert_eq!(app.mode(), Mode::Help);
        assert!(press(&mut app, "jrd").is_empty());
        assert_eq!(app.cursor, 0);
        assert!(app.confirm.is_none());
        press(&mut app, "?");
        assert!(!app.help);
        press(&mut app, "?q");
        assert!(!app.help, "q closes the help, it does not quit");
        assert_eq!(press(&mut app, "q"), [Effect::Quit]);
    }

    fn suppressed(address: &str) -> crate::store::SuppressedAddress {
        crate::store::SuppressedAddress {
            address: address.into(),
            created_at: NOW - 3600,
            reason: "the recipient said \"I didn't send this\"".into(),
        }
    }

    #[test]
    fn the_suppressed_addresses_open_with_shift_s_and_x_lifts_one_through_the_dialog() {
        let mut app = app_with(Tab::Pending, 3);
        assert_eq!(press(&mut app, "S"), [Effect::LoadSuppressed]);
        assert_eq!(app.mode(), Mode::Suppressed);
        assert!(press(&mut app, "x").is_empty(), "nothing loaded yet: nothing to lift");
        assert!(app.confirm.is_none());
        let rows = vec![suppressed("a@example.org"), suppressed("b@example.org")];
        assert!(update(&mut app, Action::SuppressedLoaded(Ok(rows))).is_none());
        assert_eq!(app.suppressed.as_ref().unwrap().rows.as_ref().unwrap().len(), 2);
        assert!(press(&mut app, "jjrd").is_empty(), "verbs do nothing in the overlay");
        assert_eq!(
            app.suppressed.as_ref().unwrap().cursor,
            1,
            "clamped to the last address"
        );
        assert_eq!((app.cursor, app.confirm.is_none()), (0, true));
        assert!(press(&mut app, "x").is_empty(), "x asks first");
        assert_eq!(app.mode(), Mode::Confirm);
        assert_eq!(
            app.confirm.as_ref().unwrap().unsuppress.as_deref(),
            Some("b@example.org")
        );
        press(&mut app, "n");
        assert_eq!(app.mode(), Mode::Suppressed, "no: back to the list");
        press(&mut app, "x");
        assert_eq!(press(&mut app, "y"), [Effect::Unsuppress("b@example.org".into())]);
        let reload = update(
            &mut app,
            Action::Unsuppressed {
                address: "b@example.org".into(),
                result: Ok(true),
            },
        );
        assert_eq!(reload, Some(Effect::LoadSuppressed));
        let status = app.status.clone().unwrap();
        assert_eq!(
            (status.tone, status.text.as_str()),
            (
                Tone::Success,
                "b@example.org: suppression lifted, it will be mailed again"
            )
        );
        update(
            &mut app,
            Action::SuppressedLoaded(Ok(vec![suppressed("a@example.org")])),
        );
        assert_eq!(app.suppressed.as_ref().unwrap().cursor, 0);
        press(&mut app, "\x1b");
        assert_eq!(app.mode(), Mode::Normal, "Esc closes");
        press(&mut app, "S");
        press(&mut app, "q");
        assert_eq!(app.mode(), Mode::Normal, "q closes it, it does not quit");
        press(&mut app, "S");
        press(&mut app, "S");
        assert_eq!(app.mode(), Mode::Normal, "S closes it too");
        press(&mut app, "S");
        update(&mut app, Action::SuppressedLoaded(Err("database error".into())));
        assert_eq!(
            app.suppressed.as_ref().unwrap().error.as_deref(),
            Some("database error")
        );
    }

    #[test]
    fn tab_picks_a_destination_and_shift_d_sends_it_or_every_dead_one_again() {
        let mut app = app_with(Tab::Verified, 3);
        key(&mut app, KeyCode::Enter);
        let id = app.detail.as_ref().unwrap().id;
        let mut details = fixtures::details(id.0, Status::Verified);
        // 1: the verification mail, sent; 2: a webhook, dead; 3: a copy, still retrying.
        let mut third = details.outbox[0].clone();
        third.number = 3;
        third.delivery = crate::mail::destination::Delivery::Retrying;
        details.outbox.push(third);
        update(
            &mut app,
            Action::DetailsLoaded {
                id,
                result: Ok(Box::new(details)),
            },
        );
        let picked = |app: &State| app.detail.as_ref().unwrap().destination;
        // None picked: every dead one.
        assert_eq!(press(&mut app, "D"), vec![Effect::Redeliver { id, number: None }]);
        key(&mut app, KeyCode::Tab);
        assert_eq!(picked(&app), Some(0));
        assert_eq!(
            press(&mut app, "D"),
            vec![Effect::Redeliver { id, number: Some(1) }],
            "a sent one may go again"
        );
        key(&mut app, KeyCode::BackTab);
        assert_eq!(picked(&app), None, "back before the first: none picked");
        key(&mut app, KeyCode::BackTab);
        assert_eq!(picked(&app), Some(2), "and round to the last");
        assert_eq!(press(&mut app, "D"), vec![], "one still retrying goes by itself");
        let status = app.status.clone().unwrap();
        assert_eq!(status.tone, Tone::Error);
        assert!(status.text.contains("destination 3 is retrying"), "{}", status.text);
        key(&mut app, KeyCode::Tab);
        assert_eq!(picked(&app), None);

        let effect = update(
            &mut app,
            Action::Redelivered {
                id,
                result: Ok(vec![(2, "webhook")]),
            },
        );
        assert!(
            matches!(effect, Some(Effect::Load(LoadRequest { detail: Some(d), .. })) if d == id),
            "{effect:?}"
        );
        assert_eq!(
            app.status.as_ref().unwrap().text,
            format!("#{id}: queued again: 2 webhook")
        );
        update(
            &mut app,
            Action::Redelivered {
                id,
                result: Err("message 2 has no dead delivery".into()),
            },
        );
        assert_eq!(app.status.as_ref().unwrap().tone, Tone::Error);
    }

    #[test]
    fn shift_d_with_nothing_dead_and_none_picked_says_so() {
        let mut app = app_with(Tab::Verified, 1);
        key(&mut app, KeyCode::Enter);
        let id = app.detail.as_ref().unwrap().id;
        let mut details = fixtures::details(id.0, Status::Verified);
        details.outbox.truncate(1);
        update(
            &mut app,
            Action::DetailsLoaded {
                id,
                result: Ok(Box::new(details)),
            },
        );
        assert_eq!(press(&mut app, "D"), vec![]);
        assert_eq!(app.status.as_ref().unwrap().text, text::NOTHING_DEAD);
    }

    #[test]
    fn enter_opens_the_pane_esc_closes_it_and_verbs_act_on_the_open_message() {
        let mut app = app_with(Tab::Verified, 3);
        press(&mut app, "j");
        assert_eq!(key(&mut app, KeyCode::Enter), Some(Effect::Details(MessageId(2))));
        assert_eq!(app.mode(), Mode::Detail);
        let details = fixtures::details(2, Status::Verified);
        update(
            &mut app,
            Action::DetailsLoaded {
                id: MessageId(2),
                result: Ok(Box::new(details)),
            },
        );
        assert!(app.detail.as_ref().unwrap().details.is_some());
        press(&mut app, "jj");
        assert_eq!(app.detail.as_ref().unwrap().scroll, 2);
        press(&mut app, "G");
        let bottom = app.detail.as_ref().unwrap().scroll;
        assert!(bottom > 2 && bottom < 100, "clamped to the content: {bottom}");
        assert_eq!(
            press(&mut app, "r"),
            [Effect::Run {
                verb: Verb::Release,
                ids: vec![MessageId(2)]
            }]
        );
        press(&mut app, "q");
        assert_eq!(app.mode(), Mode::Normal);
        assert_eq!(app.cursor, 1);
    }

    #[test]
    fn a_viewer_is_refused_every_verb_before_any_dialog_and_still_reads() {
        let mut app = app_with(Tab::Verified, 3);
        app.viewer = true;
        for keys in ["r", "s", "d", "u", "n", " r"] {
            assert_eq!(press(&mut app, keys), [], "{keys}");
            assert!(app.confirm.is_none(), "{keys}: no dialog");
        }
        assert_eq!(app.status.as_ref().unwrap().text, text::VIEWER_REFUSED);
        assert_eq!(app.status.as_ref().unwrap().tone, Tone::Error);
        press(&mut app, "gj");
        assert_eq!(app.cursor, 1, "moving still works");
        assert_eq!(key(&mut app, KeyCode::Enter), Some(Effect::Details(MessageId(2))));
        press(&mut app, "D");
        assert!(app.confirm.is_none());
    }

    #[test]
    fn a_refresh_keeps_the_cursor_on_its_message_and_shows_new_ones() {
        let mut app = app_with(Tab::Verified, 5);
        press(&mut app, "jj");
        assert_eq!(app.current().unwrap().id, MessageId(3));
        let req = load(update(&mut app, Action::Tick(NOW + 1)));
        assert_eq!((req.kind, req.after, req.limit), (LoadKind::Refresh, None, 29));
        // A new message (6) arrived.
        answer(
            &mut app,
            req,
            [6, 5, 4, 3, 2, 1].map(|i| fixtures::row(i, Status::Verified)).to_vec(),
        );
        assert_eq!(ids(&app), [6, 5, 4, 3, 2, 1]);
        assert_eq!(app.current().unwrap().id, MessageId(3), "same message, one row lower");
        // Another moderator released the cursor's message: the cursor goes to the next one.
        let req = load(update(&mut app, Action::Tick(NOW + 2)));
        answer(
            &mut app,
            req,
            [6, 5, 4, 2, 1].map(|i| fixtures::row(i, Status::Verified)).to_vec(),
        );
        assert_eq!((app.cursor, app.current().unwrap().id), (3, MessageId(2)));
        // Its message and the next go while a new one arrives on top: still the next one there.
        let req = load(update(&mut app, Action::Tick(NOW + 3)));
        answer(
            &mut app,
            req,
            [7, 6, 5, 4, 1].map(|i| fixtures::row(i, Status::Verified)).to_vec(),
        );
        assert_eq!((app.cursor, app.current().unwrap().id), (4, MessageId(1)));
        // Everything below the cursor goes: the last row.
        let req = load(update(&mut app, Action::Tick(NOW + 4)));
        answer(
            &mut app,
            req,
            [7, 6].map(|i| fixtures::row(i, Status::Verified)).to_vec(),
        );
        assert_eq!(app.current().unwrap().id, MessageId(6));
    }

    fn released(ids: std::ops::RangeInclusive<i64>) -> Vec<crate::store::MessageSummary> {
        ids.rev().map(|i| fixtures::row(i, Status::Released)).collect()
    }

    #[test]
    fn pages_load_when_the_cursor_nears_the_end_and_refresh_reads_only_the_screen() {
        let mut app = State::new("alice", NOW, 80, 24);
        app.tab = Tab::Released;
        let req = load(update(&mut app, Action::Tick(NOW)));
        assert!(
            answer(&mut app, req, released(901..=1000)).is_none(),
            "at the top: no next page yet"
        );
        assert!(app.more);
        let more = load(key(&mut app, KeyCode::End));
        assert_eq!(app.current().unwrap().id, MessageId(901));
        assert_eq!(
            (more.kind, more.after),
            (LoadKind::More, Some((fixtures::created(901), MessageId(901))))
        );
        assert!(update(&mut app, Action::Tick(NOW)).is_none(), "one load at a time");
        assert!(answer(&mut app, more, released(801..=900)).is_none());
        assert_eq!(app.rows.len(), 200);
        assert_eq!(app.current().unwrap().id, MessageId(901), "the cursor stays put");
        let last = load(press(&mut app, "G").pop());
        assert_eq!(last.kind, LoadKind::More);
        answer(&mut app, last, vec![]);
        assert!(!app.more, "the end of the list");
        assert!(press(&mut app, "kG").is_empty(), "nothing more to ask for");
        // Deep in the list, a refresh reads a screenful from the row above the screen.
        let req = load(update(&mut app, Action::Tick(NOW)));
        assert_eq!(req.kind, LoadKind::Refresh);
        assert_eq!(app.offset, 181);
        assert_eq!(req.after, Some((fixtures::created(820), MessageId(820))));
        assert_eq!(req.limit, 29);
        // Another moderator deleted 805..=810: the fresh rows replace the screen's.
        let fresh: Vec<_> = released(801..=819)
            .into_iter()
            .filter(|r| !(805..=810).contains(&r.id.0))
            .collect();
        answer(&mut app, req, fresh);
        assert_eq!(app.rows.len(), 194);
        assert_eq!(app.rows[179].id, MessageId(821));
        assert_eq!(app.rows[180].id, MessageId(820));
        assert_eq!(app.current().unwrap().id, MessageId(801));
    }

    #[test]
    fn a_database_error_shows_the_banner_and_the_next_tick_retries() {
        let mut app = app_with(Tab::Pending, 3);
        let req = load(update(&mut app, Action::Tick(NOW)));
        update(
            &mut app,
            Action::LoadFailed {
                req: req.req,
                error: "database error: unable to open database file".into(),
            },
        );
        assert!(app.db_down);
        assert_eq!(app.status.clone().unwrap().tone, Tone::Error);
        assert_eq!(ids(&app), [3, 2, 1], "the last rows stay on screen");
        let req = load(update(&mut app, Action::Tick(NOW + 1)));
        answer(
            &mut app,
            req,
            [3, 2, 1].map(|i| fixtures::row(i, Status::Pending)).to_vec(),
        );
        assert!(!app.db_down);
        assert_eq!(app.status.clone().unwrap().text, text::DB_BACK);
    }

    #[test]
    fn a_tick_while_a_load_is_in_flight_waits() {
        let mut app = app_with(Tab::Pending, 3);
        assert!(update(&mut app, Action::Tick(NOW)).is_some());
        assert!(update(&mut app, Action::Tick(NOW + 1)).is_none());
        assert_eq!(app.now, NOW + 1, "the clock moves anyway");
    }

    #[test]
    fn f_picks_a_form_whose_rows_and_counts_are_loaded_and_esc_changes_nothing() {
        let mut app = app_with(Tab::Pending, 3);
        assert!(press(&mut app, "f").is_empty());
        assert_eq!(app.mode(), Mode::Normal, "one form: nothing to pick");
        assert_eq!(app.status.clone().unwrap().text, text::ONE_FORM);

        app.forms = fixtures::forms();
        assert!(press(&mut app, "f").is_empty());
        assert_eq!((app.mode(), app.form_picker), (Mode::FormPicker, Some(0)));
        assert!(press(&mut app, "jjjjrd").is_empty(), "verbs do nothing in the picker");
        assert_eq!(app.form_picker, Some(3), "clamped to the last form");
        assert!(app.confirm.is_none());
        press(&mut app, "kk\x1b");
        assert_eq!((app.mode(), app.form.as_deref()), (Mode::Normal, None), "Esc cancels");

        press(&mut app, "fj");
        let req = load(press(&mut app, "\n").pop());
        assert_eq!(app.mode(), Mode::Normal);
        assert_eq!(app.form.as_deref(), Some("contact"));
        assert_eq!((req.kind, req.form.as_deref()), (LoadKind::Reset, Some("contact")));
        assert!(app.rows.is_empty(), "a new list");
        press(&mut app, "f");
        assert_eq!(app.form_picker, Some(1), "the picker opens on the form shown");
        assert!(press(&mut app, "\n").is_empty(), "the same form: no reload");

        // An answer for another form is dropped, counts and all.
        let mut stale = req.clone();
        stale.form = Some("quote".into());
        let counts = app.counts.clone();
        update(
            &mut app,
            Action::Loaded(Box::new(Loaded {
                request: stale,
                rows: vec![fixtures::row(9, Status::Pending)],
                counts: vec![(Status::Pending, 99)],
                details: None,
            })),
        );
        assert!(app.rows.is_empty());
        assert_eq!(app.counts, counts);

        // Every request carries the form: the retry, the refresh, a tab switch.
        let req = load(update(&mut app, Action::Tick(NOW)));
        assert_eq!((req.kind, req.form.as_deref()), (LoadKind::Reset, Some("contact")));
        answer(&mut app, req, vec![fixtures::row(2, Status::Pending)]);
        assert_eq!(ids(&app), [2]);
        let tick = load(update(&mut app, Action::Tick(NOW + 1)));
        assert_eq!(tick.form.as_deref(), Some("contact"));
        answer(&mut app, tick, vec![fixtures::row(2, Status::Pending)]);
        let tab = load(press(&mut app, "2").pop());
        assert_eq!(tab.form.as_deref(), Some("contact"));
        answer(&mut app, tab, vec![]);

        press(&mut app, "fg");
        let all = load(press(&mut app, "\n").pop());
        assert_eq!((app.form.as_deref(), all.form), (None, None), "All forms");
    }
}
