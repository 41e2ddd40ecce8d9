//! The suppressed-addresses overlay (`S`): every address that asked for no more mail, since when
//! and why; `x` lifts the highlighted one (through the confirm dialog). Addresses and reasons
//! come from the database: they pass `display_safe` (a flagged one is marked `⚠`).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::{cell, datetime, dim, error, fit, heading, list_box, warn};
use crate::tui::safe::display_safe;
use crate::tui::state::SuppressedList;
use crate::tui::text;

const ADDRESS_COLS: usize = 30;
const SINCE_COLS: usize = 20;

pub fn render(list: &SuppressedList, area: Rect, buf: &mut Buffer) {
    let rows = list.rows.as_deref().unwrap_or_default();
    let Some(inside) = list_box(area, buf, 78, rows.len().max(1), 1, text::SUPPRESSED_TITLE) else {
        return;
    };
    let cols = inside.width as usize;
    let one = |y: u16, line: Line, buf: &mut Buffer| buf.set_line(inside.x, y, &line, inside.width);
    let message = match (&list.error, &list.rows) {
        (Some(e), _) => Some(Line::styled(
            fit(&format!(" {}", text::suppressed_failed(e)), cols).into_owned(),
            error(),
        )),
        (None, None) => Some(Line::styled(format!(" {}", text::LOADING), dim())),
        (None, Some(r)) if r.is_empty() => Some(Line::styled(format!(" {}", text::NO_SUPPRESSED), dim())),
        _ => None,
    };
    if let Some(line) = message {
        one(inside.y, line, buf);
        return;
    }
    let reason_cols = cols.saturating_sub(1 + 2 + ADDRESS_COLS + 1 + SINCE_COLS + 1);
    let [a, s, r] = text::SUPPRESSED_COLUMNS;
    let header = format!(
        "   {} {} {}",
        cell(a, ADDRESS_COLS),
        cell(s, SINCE_COLS),
        fit(r, reason_cols)
    );
    one(inside.y, Line::styled(header, heading()), buf);
    // Rows below the column titles; the window follows the highlighted address.
    let shown = (inside.height as usize).saturating_sub(1);
    if shown == 0 {
        return;
    }
    let cursor = list.cursor.min(rows.len().saturating_sub(1));
    let first = cursor.saturating_sub(shown - 1);
    for (i, row) in rows.iter().enumerate().skip(first).take(shown) {
        let (address, flagged) = display_safe(&row.address);
        let (reason, _) = display_safe(&row.reason);
        let here = i == cursor;
        let mark = if here { text::MARK_CURSOR } else { " " };
        let flag = if flagged { text::MARK_FLAGGED } else { " " };
        let style = if here {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
        };
        let line = Line::from(vec![
            Span::styled(mark.to_string(), style),
            Span::styled(flag.to_string(), warn()),
            Span::styled(
                format!(
                    " {} {} {}",
                    cell(&address, ADDRESS_COLS),
                    cell(&datetime(row.created_at), SINCE_COLS),
                    cell(&reason, reason_cols)
                ),
                style,
            ),
        ]);
        one(inside.y + 1 + super::cells(i - first), line, buf);
    }
}
