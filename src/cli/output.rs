//! How the verbs print. Visitor text is untrusted: everything shown on a terminal goes through
//! `display_safe` (no escape sequences reach the moderator's terminal), JSON escapes the
//! invisible and bidi characters too, and CSV cells cannot start a spreadsheet formula.

use std::io::{self, Write};

use serde::Serialize;

use crate::actions::Details;
use crate::clock::human_time;
use crate::domain::Message;
use crate::mail::queue::OutboxState;
use crate::store::MessageSummary;
use crate::tui::safe::is_unsafe;
pub use crate::tui::safe::safe;
pub use crate::tui::view::age;

/// Serialises, then writes control, C1 and bidi characters as `\uXXXX` escapes: still the same
/// JSON to a parser, but inert when printed on a terminal.
pub fn json<T: Serialize>(value: &T) -> serde_json::Result<String> {
    let raw = serde_json::to_string_pretty(value)?;
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        // Outside strings the pretty printer only emits newlines; inside them serde_json has
        // already escaped C0. What is left to defuse is the rest of the terminal-unsafe set.
        if c != '\n' && is_unsafe(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn clip(s: &str, width: usize) -> String {
    let s = safe(s);
    if s.chars().count() <= width {
        format!("{s:<width$}")
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

pub fn mail_state(row: &MessageSummary) -> String {
    match &row.mail {
        None => "-".into(),
        Some(m) => match (m.state, m.attempts) {
            (OutboxState::Sent, _) => format!("{} sent", m.kind.as_str()),
            (OutboxState::Dead, _) => format!(
                "{} dead: {}",
                m.kind.as_str(),
                safe(m.last_error.as_deref().unwrap_or(""))
            ),
            (OutboxState::Queued, 0) => format!("{} queued", m.kind.as_str()),
            (OutboxState::Queued, n) => {
                format!(
                    "{} retrying ({n}): {}",
                    m.kind.as_str(),
                    safe(m.last_error.as_deref().unwrap_or(""))
                )
            }
        },
    }
}

pub fn table(out: &mut impl Write, rows: &[MessageSummary], now: i64) -> io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "no messages");
    }
    writeln!(
        out,
        "{:>6}  {:<9} {:>4}  {:<20} {:<28} {:<30} MAIL",
        "ID", "STATUS", "AGE", "NAME", "EMAIL", "SUBJECT"
    )?;
    for r in rows {
        let subject = r
            .subject
            .clone()
            .unwrap_or_else(|| r.preview.lines().next().unwrap_or("").to_string());
        writeln!(
            out,
            "{:>6}  {:<9} {:>4}  {} {} {} {}",
            r.id.0,
            r.status.as_str(),
            age(now, r.created_at),
            clip(&r.name, 20),
            clip(&r.email, 28),
            clip(&subject, 30),
            clip(&mail_state(r), 40).trim_end(),
        )?;
    }
    Ok(())
}

pub fn details(out: &mut impl Write, d: &Details) -> io::Result<()> {
    let m = &d.message;
    let when = |t: Option<i64>| t.map(human_time).unwrap_or_else(|| "-".into());
    writeln!(out, "Message #{}  [{}]", m.id, m.status)?;
    writeln!(out, "From:       {} <{}>", safe(&m.name), safe(&m.email))?;
    writeln!(out, "Subject:    {}", safe(m.subject.as_deref().unwrap_or("-")))?;
    writeln!(out, "Submitted:  {}", human_time(m.created_at))?;
    writeln!(out, "IP:         {}", safe(m.ip.as_deref().unwrap_or("-")))?;
    writeln!(out, "User agent: {}", safe(m.user_agent.as_deref().unwrap_or("-")))?;
    writeln!(
        out,
        "Link opened {}   Verified {}   Released {}",
        when(m.link_opened_at),
        when(m.verified_at),
        when(m.released_at)
    )?;
    writeln!(out)?;
    for line in m.body.lines() {
        writeln!(out, "    {}", safe(line))?;
    }
    writeln!(out)?;
    writeln!(out, "Audit trail:")?;
    for a in &d.audit {
        let moved = match (a.from_status, a.to_status) {
            (Some(f), Some(t)) => format!("{f} → {t}"),
            (None, Some(t)) => format!("→ {t}"),
            _ => String::new(),
        };
        let detail = a
            .detail
            .as_deref()
            .map(|x| format!(" ({})", safe(x)))
            .unwrap_or_default();
        writeln!(
            out,
            "  {}  {:<12} {:<8} {}{}",
            human_time(a.at),
            safe(&a.actor),
            a.action,
            moved,
            detail
        )?;
    }
    writeln!(out, "Mail:")?;
    if d.outbox.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for o in &d.outbox {
        let state = match o.state {
            OutboxState::Queued if o.attempts > 0 => format!("retrying, next {}", human_time(o.next_attempt_at)),
            OutboxState::Queued => "queued".into(),
            OutboxState::Sent => format!("sent {}", o.sent_at.map(human_time).unwrap_or_default()),
            OutboxState::Dead => "dead-lettered".into(),
        };
        let err = o
            .last_error
            .as_deref()
            .map(|e| format!("; last error: {}", safe(e)))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:<8} to {}  {} after {} attempt(s){}",
            o.kind.as_str(),
            safe(&o.recipient),
            state,
            o.attempts,
            err
        )?;
    }
    Ok(())
}

const CSV_COLUMNS: &[&str] = &[
    "id",
    "status",
    "name",
    "email",
    "subject",
    "message",
    "created_at",
    "verified_at",
    "released_at",
    "ip",
    "user_agent",
];

pub fn csv_header(out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{}\r", CSV_COLUMNS.join(","))
}

/// RFC 4180 quoting, and a leading `'` on cells a spreadsheet would run as a formula.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub fn csv_row(out: &mut impl Write, m: &Message, escape_controls: bool) -> io::Result<()> {
    let opt = |t: Option<i64>| t.map(|t| t.to_string()).unwrap_or_default();
    let cells = [
        m.id.0.to_string(),
        m.status.as_str().to_string(),
        m.name.clone(),
        m.email.clone(),
        m.subject.clone().unwrap_or_default(),
        m.body.clone(),
        m.created_at.to_string(),
        opt(m.verified_at),
        opt(m.released_at),
        m.ip.clone().unwrap_or_default(),
        m.user_agent.clone().unwrap_or_default(),
    ];
    let cell = |c: &String| {
        if escape_controls {
            csv_cell(&safe(c))
        } else {
            csv_cell(c)
        }
    };
    writeln!(out, "{}\r", cells.iter().map(cell).collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn json_output_keeps_no_terminal_controls() {
        let s = json(&serde_json::json!({ "name": "a\u{1b}[2Jb\u{9b}c\u{202e}d" })).unwrap();
        assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s:?}");
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["name"], "a\u{1b}[2Jb\u{9b}c\u{202e}d", "same data for a parser");
    }
}
