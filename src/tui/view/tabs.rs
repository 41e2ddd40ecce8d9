//! The top line: the tabs with live counts (of the picked form, if one is), the picked form, the
//! applied filter and who is acting.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::{bold, dim, fit, warn};
use crate::tui::safe::safe;
use crate::tui::state::{State, Tab};
use crate::tui::text;

pub fn render(app: &State, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    let mut spans = vec![Span::styled(format!(" {} ", text::APP), bold()), Span::raw(" ")];
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

    // On the right: the picked form, the applied filter, then (if there is room) who is acting.
    let mut room = (area.width as usize).saturating_sub(left.width() + 1);
    let mut right = Vec::new();
    if let Some(slug) = &app.form {
        let badge = fit(&text::form_badge(&safe(app.form_title(slug))), room.saturating_sub(1)).into_owned();
        room = room.saturating_sub(super::width(&badge) + 1);
        right.push(Span::styled(badge, warn().add_modifier(Modifier::BOLD)));
        right.push(Span::raw(" "));
    }
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
