//! The help overlay (`?`): every key, from the one list in `text::KEYS` (and `text::FORM_KEY` on a
//! site with several forms).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Widget};

use super::{bold, cell, centered, dim, fit};
use crate::tui::text;

const KEY_COLS: usize = 18;

pub fn render(area: Rect, buf: &mut Buffer, several_forms: bool) {
    let mut keys: Vec<(&str, &str)> = text::KEYS.to_vec();
    if several_forms && let Some(i) = keys.iter().position(|(k, _)| *k == "/") {
        keys.insert(i + 1, text::FORM_KEY);
    }
    let rect = centered(area, 76, super::cells(keys.len() + text::HELP_FOOTER.len()) + 3);
    Clear.render(rect, buf);
    let block = Block::bordered().title(text::HELP_TITLE).border_style(Style::new());
    let inside = block.inner(rect);
    block.render(rect, buf);
    let room = (inside.width as usize).saturating_sub(KEY_COLS + 2);
    let mut lines: Vec<Line> = keys
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::raw(" "),
                Span::styled(cell(keys, KEY_COLS), bold()),
                Span::raw(" "),
                Span::raw(fit(what, room).into_owned()),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    for l in text::HELP_FOOTER {
        lines.push(Line::styled(format!(" {}", fit(l, room + KEY_COLS)), dim()));
    }
    for (i, line) in lines.iter().take(inside.height as usize).enumerate() {
        buf.set_line(inside.x, inside.y + super::cells(i), line, inside.width);
    }
}
