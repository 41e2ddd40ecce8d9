//! The top line: the app's name (or the picked form's title), the tabs with live counts (of the
//! picked form, if one is), the applied filter and who is acting.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::{bold, dim, fit, warn};
use crate::tui::safe::safe;
use crate::tui::state::{State, Tab};
use crate::tui::text;

/// The most columns the picked form's title takes.
const FORM_TITLE_COLS: usize = 20;

pub fn render(app: &State, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    // The picked form takes the app's name's place: the counts beside it are its own.
    let title = match &app.form {
        Some(slug) => Span::styled(
            format!(" {} ", fit(&safe(app.form_title(slug)), FORM_TITLE_COLS)),
            warn().add_modifier(Modifier::BOLD),
        ),
        None => Span::styled(format!(" {} ", text::APP), bold()),
    };
    let mut spans = vec![title, Span::raw(" ")];
    for (i, tab) in Tab::ALL.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(text::SEPARATOR, dim()));
        }
        let label = format!(" {} {} ", text::tab_title(tab), app.count(tab.status()));
        let style = if tab == app.tab {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new()
        };
        spans.push(Span::styled(label, style));
    }
    let left = Line::from(spans);
    buf.set_line(area.x, area.y, &left, area.width);

    // On the right: the applied filter, then (if there is room) who is acting.
    let mut room = (area.width as usize).saturating_sub(left.width() + 1);
    let mut right = Vec::new();
    if let Some(f) = &app.filter {
        let badge = fit(&text::filter_badge(&safe(f)), room.saturating_sub(1)).into_owned();
        room = room.saturating_sub(badge.chars().count() + 1);
        right.push(Span::styled(badge, warn().add_modifier(Modifier::BOLD)));
        right.push(Span::raw(" "));
    }
    let actor = format!("{} ", text::as_actor(&safe(&app.actor)));
    if super::width(&actor) < room {
        right.push(Span::styled(actor, dim()));
    }
    let right = Line::from(right);
    let rw = right.width();
    if rw > 0 && rw < area.width as usize {
        buf.set_line(
            area.x + super::cells(area.width as usize - rw),
            area.y,
            &right,
            super::cells(rw),
        );
    }
}
