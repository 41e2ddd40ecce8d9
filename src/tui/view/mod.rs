//! Drawing: a pure function of [`State`] that never waits. One file per panel; each gets its area
//! and the buffer. Text from the database goes through `safe::display_safe` (via the helpers
//! here) before it reaches a cell.

pub mod detail;
pub mod dialog;
pub mod forms;
pub mod help;
pub mod status;
pub mod suppressed;
pub mod table;
pub mod tabs;

use std::borrow::Cow;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::Widget;

use super::state::State;
use super::text;
use crate::mail::queue::OutboxState;
use crate::store::MailSummary;

pub fn draw(frame: &mut Frame, app: &State) {
    frame.render_widget(app, frame.area());
}

impl Widget for &State {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let banner = u16::from(self.db_down);
        let [tabs_area, banner_area, body, status_area, hint_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(banner),
            Constraint::Fill(1),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        tabs::render(self, tabs_area, buf);
        if self.db_down {
            status::banner(banner_area, buf);
        }
        if self.detail.is_some() {
            detail::render(self, body, buf);
        } else {
            table::render(self, body, buf);
        }
        status::render(self, status_area, hint_area, buf);
        if let Some(list) = &self.suppressed {
            suppressed::render(list, area, buf);
        }
        if let Some(at) = self.form_picker {
            forms::render(self, at, area, buf);
        }
        if let Some(confirm) = &self.confirm {
            dialog::render(confirm, area, buf);
        }
        if self.help {
            help::render(area, buf, self.several_forms());
        }
    }
}

// --- styles -------------------------------------------------------------------------------------

pub(crate) fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub(crate) fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub(crate) fn heading() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}

pub(crate) fn warn() -> Style {
    Style::new().fg(Color::Yellow)
}

pub(crate) fn error() -> Style {
    Style::new().fg(Color::Red)
}

pub(crate) fn success() -> Style {
    Style::new().fg(Color::Green)
}

// --- text measuring -----------------------------------------------------------------------------

/// Columns a string takes on screen (wide characters count two).
/// A count of rows or columns as a screen coordinate; a terminal is never 65 536 cells wide, so
/// anything larger is clamped rather than wrapped.
pub fn cells(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

pub fn width(s: &str) -> usize {
    Span::raw(s).width()
}

fn char_width(c: char) -> usize {
    let mut b = [0u8; 4];
    Span::raw(&*c.encode_utf8(&mut b)).width()
}

/// At most `max` columns of `s`, with `…` where it was cut.
pub fn fit(s: &str, max: usize) -> Cow<'_, str> {
    if width(s) <= max {
        return Cow::Borrowed(s);
    }
    if max == 0 {
        return Cow::Borrowed("");
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    Cow::Owned(out)
}

/// Exactly `cols` columns: cut with `…` or padded with spaces.
pub fn cell(s: &str, cols: usize) -> String {
    let fitted = fit(s, cols);
    let pad = cols.saturating_sub(width(&fitted));
    format!("{fitted}{}", " ".repeat(pad))
}

/// Same, right-aligned.
pub fn cell_right(s: &str, cols: usize) -> String {
    let fitted = fit(s, cols);
    let pad = cols.saturating_sub(width(&fitted));
    format!("{}{fitted}", " ".repeat(pad))
}

/// Greedy word wrap to `cols` columns; words longer than a line are broken. An empty text is one
/// empty line. `s` must already be safe (one line, no control characters).
pub fn wrap(s: &str, cols: usize) -> Vec<String> {
    let cols = cols.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in s.split_inclusive(' ') {
        let bare = width(word.trim_end_matches(' '));
        if used > 0 && used + bare > cols {
            lines.push(line.trim_end().to_string());
            line.clear();
            used = 0;
        }
        if bare > cols {
            for c in word.chars() {
                let w = char_width(c);
                if used + w > cols && used > 0 {
                    lines.push(std::mem::take(&mut line));
                    used = 0;
                }
                line.push(c);
                used += w;
            }
        } else {
            line.push_str(word);
            used += width(word);
        }
    }
    lines.push(line.trim_end().to_string());
    lines
}

// --- values -------------------------------------------------------------------------------------

/// How long ago, in the largest unit: `42s`, `5m`, `3h`, `2d`, `1y`.
pub fn age(now: i64, then: i64) -> String {
    let s = (now - then).max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        86_400..31_536_000 => format!("{}d", s / 86_400),
        _ => format!("{}y", s / 31_536_000),
    }
}

/// `2027-01-15 08:00 UTC`.
pub fn datetime(unix: i64) -> String {
    let c = crate::clock::civil(unix);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        c.year, c.month, c.day, c.hour, c.minute
    )
}

/// A row's mail state, and how to colour it.
pub fn mail_state(mail: Option<&MailSummary>) -> (Cow<'static, str>, Style) {
    let Some(m) = mail else {
        return (Cow::Borrowed(text::NONE), dim());
    };
    match m.state {
        OutboxState::Queued if m.attempts == 0 => (Cow::Borrowed(text::MAIL_QUEUED), Style::new()),
        OutboxState::Queued => {
            let error = m
                .last_error
                .as_deref()
                .map(|e| fit(&super::safe::safe(e), 24).into_owned());
            (Cow::Owned(text::mail_retrying(m.attempts, error.as_deref())), warn())
        }
        OutboxState::Sent => (Cow::Borrowed(text::MAIL_SENT), success()),
        OutboxState::Dead => (Cow::Borrowed(text::MAIL_DEAD), error().add_modifier(Modifier::BOLD)),
    }
}

/// A titled, bordered box over the screen for a list of `rows` lines (plus `extra` of its own),
/// as tall as fits with a line of the screen left above and below: the area inside, or None when
/// nothing fits in it.
pub fn list_box(area: Rect, buf: &mut Buffer, width: u16, rows: usize, extra: u16, title: &str) -> Option<Rect> {
    let want = cells(rows) + 2 + extra;
    let rect = centered(area, width, want.min(area.height.saturating_sub(2)).max(3));
    ratatui::widgets::Clear.render(rect, buf);
    let block = ratatui::widgets::Block::bordered()
        .title(title)
        .border_style(Style::new());
    let inside = block.inner(rect);
    block.render(rect, buf);
    (inside.height > 0 && inside.width > 0).then_some(inside)
}

/// A rectangle of at most `w`×`h` in the middle of `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_use_the_largest_unit() {
        let now = 1_000_000_000;
        let cases = [
            (0, "0s"),
            (42, "42s"),
            (300, "5m"),
            (3 * 3600 + 59, "3h"),
            (2 * 86_400, "2d"),
            (400 * 86_400, "1y"),
            (-5, "0s"),
        ];
        for (ago, shown) in cases {
            assert_eq!(age(now, now - ago), shown);
        }
    }

    #[test]
    fn datetimes_are_utc_calendar_dates() {
        assert_eq!(datetime(0), "1970-01-01 00:00 UTC");
        assert_eq!(datetime(1_800_000_000), "2027-01-15 08:00 UTC");
        assert_eq!(datetime(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(datetime(1_709_251_199), "2024-02-29 23:59 UTC");
    }

    #[test]
    fn fitting_cuts_with_an_ellipsis_and_counts_wide_characters() {
        assert_eq!(fit("hello", 5), "hello");
        assert_eq!(fit("hello world", 6), "hello…");
        assert_eq!(fit("日本語です", 5), "日本…");
        assert_eq!(cell("ab", 4), "ab  ");
        assert_eq!(cell_right("7", 3), "  7");
        assert_eq!(width(&cell("日本語です", 5)), 5);
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_splits_long_words() {
        assert_eq!(wrap("the quick brown fox", 10), ["the quick", "brown fox"]);
        assert_eq!(wrap("abcdefghij klm", 4), ["abcd", "efgh", "ij", "klm"]);
        assert_eq!(wrap("", 10), [""]);
        for line in wrap("a fairly long sentence that goes on and on and on", 12) {
            assert!(width(&line) <= 12, "{line:?}");
        }
    }
}
