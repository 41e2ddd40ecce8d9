//! The bottom two lines: the last result (or error, or the filter being typed) with the cursor's
//! position, then a short key hint. And the red banner when the database is unavailable.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::{cell, dim, error, fit, success, width};
use crate::tui::safe::safe;
use crate::tui::state::{Mode, State, Tone};
use crate::tui::text;

pub fn render(app: &State, status: Rect, hint: Rect, buf: &mut Buffer) {
    if status.is_empty() || hint.is_empty() {
        return;
    }
    let cols = status.width as usize;
    if let Some(input) = &app.filter_input {
        let typed = safe(input);
        let line = Line::from(vec![
            Span::styled(text::FILTER_PROMPT, bold_yellow()),
            Span::raw(fit(&typed, cols.saturating_sub(2)).into_owned()),
            Span::styled(" ", Style::new().add_modifier(Modifier::REVERSED)),
        ]);
        buf.set_line(status.x, status.y, &line, status.width);
        hint_line(text::FILTER_HINT, hint, buf);
        return;
    }
    let position = position(app);
    let room = cols.saturating_sub(width(&position) + 1);
    if let Some(s) = &app.status {
        let style = match s.tone {
            Tone::Info => Style::new(),
            Tone::Success => success(),
            Tone::Error => error().add_modifier(Modifier::BOLD),
        };
        let shown = cell(&safe(&s.text), room);
        buf.set_line(
            status.x,
            status.y,
            &Line::from(Span::styled(shown, style)),
            status.width,
        );
    }
    if !position.is_empty() && width(&position) < cols {
        let x = status.x + super::cells(cols - width(&position));
        buf.set_string(x, status.y, &position, dim());
    }
    let hint_text = match app.mode() {
        Mode::Normal | Mode::Filter => text::hint_table(app.tab),
        Mode::Detail => text::HINT_DETAIL,
        Mode::Confirm => text::HINT_CONFIRM,
        Mode::Help => text::HINT_HELP,
        Mode::Suppressed => text::HINT_SUPPRESSED,
        Mode::FormPicker => text::HINT_FORM_PICKER,
    };
    hint_line(hint_text, hint, buf);
}

/// `3/12`: the cursor's row and how many there are (`42/100+` when a filter hides the total).
fn position(app: &State) -> String {
    if app.rows.is_empty() || app.detail.is_some() {
        return String::new();
    }
    let at = app.cursor + 1;
    if app.filter.is_none() {
        format!(
            "{at}/{} ",
            app.count(app.tab.status())
                .max(i64::try_from(app.rows.len()).unwrap_or(i64::MAX))
        )
    } else if app.more {
        format!("{at}/{}+ ", app.rows.len())
    } else {
        format!("{at}/{} ", app.rows.len())
    }
}

fn hint_line(s: &str, area: Rect, buf: &mut Buffer) {
    let shown = format!(" {}", fit(s, (area.width as usize).saturating_sub(1)));
    buf.set_string(area.x, area.y, shown, dim());
}

fn bold_yellow() -> Style {
    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
}

pub fn banner(area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    let style = Style::new()
        .bg(Color::Red)
        .fg(Color::White)
        .add_modifier(Modifier::BOLD);
    buf.set_style(area, style);
    buf.set_string(area.x, area.y, fit(text::BANNER_DB_DOWN, area.width as usize), style);
}
