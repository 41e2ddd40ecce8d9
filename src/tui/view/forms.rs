//! The form picker (`f`, on a site with several forms): "All forms", then each form by title and
//! slug in configuration order; Enter shows the highlighted one's messages, Esc changes nothing.
//! The form shown now is marked `•`.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::{dim, fit, list_box};
use crate::tui::safe::safe;
use crate::tui::state::State;
use crate::tui::text;

const WIDTH: u16 = 56;

pub fn render(app: &State, at: usize, area: Rect, buf: &mut Buffer) {
    let mut rows: Vec<(String, Option<String>, bool)> = vec![(text::ALL_FORMS.to_string(), None, app.form.is_none())];
    for f in &app.forms {
        rows.push((
            safe(&f.title).into_owned(),
            Some(safe(&f.slug).into_owned()),
            app.form.as_deref() == Some(f.slug.as_str()),
        ));
    }
    let Some(inside) = list_box(area, buf, WIDTH, rows.len(), 0, text::FORM_PICKER_TITLE) else {
        return;
    };
    let cols = inside.width as usize;
    let shown = inside.height as usize;
    let at = at.min(rows.len().saturating_sub(1));
    let first = at.saturating_sub(shown.saturating_sub(1));
    for (i, (title, slug, current)) in rows.iter().enumerate().skip(first).take(shown) {
        let here = i == at;
        let mark = format!(
            "{}{} ",
            if here { text::MARK_CURSOR } else { " " },
            if *current { "•" } else { " " }
        );
        let room = cols.saturating_sub(super::width(&mark));
        let slug = slug.as_ref().map(|s| format!("  {s}")).unwrap_or_default();
        let title = fit(title, room.saturating_sub(super::width(&slug)).max(room / 2)).into_owned();
        let slug = fit(&slug, room.saturating_sub(super::width(&title))).into_owned();
        let used = super::width(&mark) + super::width(&title) + super::width(&slug);
        let style = if here {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
        };
        let line = Line::from(vec![
            Span::styled(mark, style),
            Span::styled(title, style.add_modifier(Modifier::BOLD)),
            Span::styled(slug, if here { style } else { dim() }),
            Span::styled(" ".repeat(cols.saturating_sub(used)), style),
        ]);
        buf.set_line(inside.x, inside.y + super::cells(i - first), &line, inside.width);
    }
}
