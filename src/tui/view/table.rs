//! The message table: marks, id, age, (the form, when the site has several,) name, email, subject
//! (or the body's first line), mail state.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::{age, cell, cell_right, dim, fit, mail_state, warn};
use crate::store::MessageSummary;
use crate::tui::safe::{display_safe, safe, safe_lines};
use crate::tui::state::State;
use crate::tui::text;

const SPACING: usize = 1;

/// Columns of the form column: its longest title, within these.
const FORM_COLS: (usize, usize) = (4, 14);

/// Column widths for a table `cols` wide: fixed marks, id, age and mail (and form); the rest
/// shared 3:4:5 by name, email and subject. The form column is 0 wide (and absent) on a site with
/// one form, and while one form is picked (the top line names it).
fn widths(app: &State, cols: usize) -> ([usize; 7], usize) {
    let id = app
        .rows
        .iter()
        .map(|r| r.id.0)
        .max()
        .unwrap_or(1)
        .max(1)
        .to_string()
        .len();
    let mail = (cols / 5).clamp(13, 30);
    let form = if app.several_forms() && app.form.is_none() {
        app.forms
            .iter()
            .map(|f| super::width(&safe(&f.title)))
            .max()
            .unwrap_or(0)
            .clamp(FORM_COLS.0, FORM_COLS.1)
            + SPACING
    } else {
        0
    };
    let fixed = 3 + id + 4 + mail + 6 * SPACING + form;
    let flex = cols.saturating_sub(fixed);
    let name = flex * 3 / 12;
    let email = flex * 4 / 12;
    (
        [3, id, 4, name, email, flex - name - email, mail],
        form.saturating_sub(SPACING),
    )
}

/// The form column's title and cells go after `age` (the third column).
const FORM_AT: usize = 3;

pub fn render(app: &State, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    let (w, form_w) = widths(app, area.width as usize);
    let mut header: Vec<String> = text::COLUMNS
        .iter()
        .zip(w)
        .enumerate()
        .map(|(i, (title, cols))| {
            if i == 1 {
                cell_right(title, cols)
            } else {
                cell(title, cols)
            }
        })
        .collect();
    if form_w > 0 {
        header.insert(FORM_AT, cell(text::FORM_COLUMN, form_w));
    }
    let header_style = Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    let line = Line::from(join(
        header.into_iter().map(|s| Span::styled(s, header_style)).collect(),
    ));
    buf.set_style(Rect { height: 1, ..area }, header_style);
    buf.set_line(area.x, area.y, &line, area.width);

    let body = Rect {
        y: area.y + 1,
        height: area.height - 1,
        ..area
    };
    if app.rows.is_empty() {
        let note = if app.loaded {
            text::empty_tab(
                app.tab,
                app.filter.as_deref(),
                app.form.as_deref().map(|slug| app.form_title(slug)),
            )
        } else {
            text::LOADING.to_string()
        };
        let note = crate::tui::safe::safe(&note).into_owned();
        if body.height > 0 {
            let note = fit(&note, body.width as usize).into_owned();
            let x = body.x + super::cells((body.width as usize).saturating_sub(super::width(&note))) / 2;
            buf.set_string(x, body.y + body.height / 3, note, dim());
        }
        return;
    }
    let offset = app.clamped_offset();
    for (i, row) in app.rows.iter().enumerate().skip(offset).take(body.height as usize) {
        let y = body.y + super::cells(i - offset);
        let selected = app.selected.contains(&row.id);
        let mut cells = cells(app, row, i == app.cursor, selected, &w);
        if form_w > 0 {
            let style = if selected {
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
            } else {
                dim()
            };
            cells.insert(
                FORM_AT,
                Span::styled(cell(&safe(app.form_title(&row.form)), form_w), style),
            );
        }
        let line = Line::from(join(cells));
        buf.set_line(body.x, y, &line, body.width);
        let rect = Rect { y, height: 1, ..body };
        if i == app.cursor {
            buf.set_style(rect, Style::new().add_modifier(Modifier::REVERSED));
        }
    }
}

fn cells(app: &State, row: &MessageSummary, cursor: bool, selected: bool, w: &[usize; 7]) -> Vec<Span<'static>> {
    let (name, f1) = display_safe(&row.name);
    let (email, f2) = display_safe(&row.email);
    let (subject, f3) = row
        .subject
        .as_deref()
        .map(display_safe)
        .map_or((None, false), |(s, f)| (Some(s), f));
    let (preview, f4) = safe_lines(&row.preview);
    let flagged = f1 || f2 || f3 || f4;
    let base = if selected {
        Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    };
    let marks = format!(
        "{}{}{}",
        if cursor { text::MARK_CURSOR } else { " " },
        if selected { text::MARK_SELECTED } else { " " },
        if flagged { text::MARK_FLAGGED } else { " " }
    );
    let (about, about_style) = match subject.filter(|s| !s.trim().is_empty()) {
        Some(s) => (s.into_owned(), base),
        None => {
            let first = preview
                .iter()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string());
            (first.unwrap_or_default(), base.patch(dim()))
        }
    };
    // Pending with no mail at all: a cap or a suppression withheld its verification (see audit).
    let (mail, mail_style) = if row.mail.is_none() && row.status == crate::domain::Status::Pending {
        (std::borrow::Cow::Borrowed(text::MAIL_HELD), warn())
    } else {
        mail_state(row.mail.as_ref())
    };
    vec![
        Span::styled(
            cell(&marks, w[0]),
            if flagged {
                warn().add_modifier(Modifier::BOLD)
            } else {
                base
            },
        ),
        Span::styled(cell_right(&row.id.to_string(), w[1]), base.patch(dim())),
        Span::styled(cell(&age(app.now, row.created_at), w[2]), base),
        Span::styled(cell(&name, w[3]), base),
        Span::styled(cell(&email, w[4]), base),
        Span::styled(cell(&about, w[5]), about_style),
        Span::styled(cell(&mail, w[6]), if selected { base } else { mail_style }),
    ]
}

fn join(cells: Vec<Span<'static>>) -> Vec<Span<'static>> {
    let mut out = Vec::with_capacity(cells.len() * 2);
    for (i, c) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(Span::raw(" ".repeat(SPACING)));
        }
        out.push(c);
    }
    out
}
