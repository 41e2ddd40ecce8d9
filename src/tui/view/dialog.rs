//! The one confirm dialog: what will happen, to which messages, and how to say yes or no.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Widget};

use super::{bold, centered, dim, fit, wrap};
use crate::tui::action::Verb;
use crate::tui::safe::safe;
use crate::tui::state::Confirm;
use crate::tui::text;

pub fn render(c: &Confirm, area: Rect, buf: &mut Buffer) {
    let w = area.width.saturating_sub(4).clamp(20, 64);
    let inner = (w as usize).saturating_sub(4);
    let mut lines = Vec::new();
    if let Some(address) = &c.unsuppress {
        lines.push(Line::styled(text::unsuppress_question(), bold()));
        lines.push(Line::raw(fit(&safe(address), inner).into_owned()));
        for l in wrap(text::UNSUPPRESS_NOTE, inner) {
            lines.push(Line::styled(l, dim()));
        }
    } else {
        lines.push(Line::styled(text::confirm_question(c.verb, c.ids.len()), bold()));
        for l in wrap(&text::ids(&c.ids), inner).into_iter().take(3) {
            lines.push(Line::raw(fit(&l, inner).into_owned()));
        }
        for l in wrap(text::confirm_note(c.verb), inner) {
            lines.push(Line::styled(l, dim()));
        }
    }
    if c.skipped > 0 {
        for l in wrap(&text::skipped(c.skipped), inner) {
            lines.push(Line::styled(l, dim()));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(text::CONFIRM_KEYS, bold()));
    let rect = centered(area, w, super::cells(lines.len()) + 2);
    Clear.render(rect, buf);
    let colour = if c.verb == Verb::Delete {
        Color::Red
    } else {
        Color::Yellow
    };
    let block = Block::bordered()
        .title(text::CONFIRM_TITLE)
        .border_style(Style::new().fg(colour));
    let inside = block.inner(rect);
    block.render(rect, buf);
    let inside = Rect {
        x: inside.x + 1,
        width: inside.width.saturating_sub(2),
        ..inside
    };
    for (i, line) in lines.iter().take(inside.height as usize).enumerate() {
        buf.set_line(inside.x, inside.y + super::cells(i), line, inside.width);
    }
}
