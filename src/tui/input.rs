//! Bytes from a terminal into the events the dashboard reads: what crossterm does for the local
//! terminal, for a terminal at the far end of a byte stream (an SSH channel), where crossterm's
//! reader, which reads the process's own tty, cannot go.
//!
//! Pure and incremental: bytes may arrive split anywhere (an escape sequence across two SSH
//! packets), so an unfinished sequence waits for the next [`InputParser::feed`]. A lone Esc is
//! only known to be one when nothing follows it: the caller calls [`InputParser::flush`] when no
//! byte has come for a moment ([`ESC_WAIT`]).
//!
//! Understood: printable text (UTF-8), Enter, Tab and Shift-Tab, Backspace, Esc, Ctrl+letter
//! (Ctrl-C among them), Alt+key, the arrows, Home/End, PgUp/PgDn, Insert/Delete, F1–F4, in both
//! the normal and the application cursor-key forms xterm, VTE, tmux, PuTTY and the Linux console
//! send, and bracketed paste. Any other escape sequence is read to its end and dropped, so a key
//! the dashboard does not know never turns into stray letters.

use std::time::Duration;

use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};

/// How long after an Esc byte with nothing behind it the Esc key is taken as pressed.
pub const ESC_WAIT: Duration = Duration::from_millis(40);

/// A paste longer than this is cut (the dashboard's only text input is a filter line).
const MAX_PASTE: usize = 64 * 1024;

const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

#[derive(Debug, Default)]
pub struct InputParser {
    /// Bytes of an unfinished sequence or character.
    pending: Vec<u8>,
    /// Inside a bracketed paste: what it has brought so far.
    paste: Option<Vec<u8>>,
}

fn key(code: KeyCode, modifiers: KeyModifiers) -> Event {
    Event::Key(KeyEvent {
        code,
        modifiers,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    })
}

fn plain(code: KeyCode) -> Event {
    key(code, KeyModifiers::NONE)
}

/// What the bytes at the start of a buffer are.
enum Parsed {
    /// An event (or nothing, for a sequence dropped) and how many bytes it took.
    Done(Option<Event>, usize),
    /// The bytes so far may begin a longer sequence: wait for more.
    NeedMore,
}

impl InputParser {
    pub fn new() -> InputParser {
        InputParser::default()
    }

    /// The events `bytes` complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut at = 0;
        while at < self.pending.len() {
            if let Some(paste) = &mut self.paste {
                let rest = &self.pending[at..];
                match find(rest, PASTE_END) {
                    Some(end) => {
                        take_paste(paste, &rest[..end]);
                        let text = String::from_utf8_lossy(paste).into_owned();
                        self.paste = None;
                        events.push(Event::Paste(text));
                        at += end + PASTE_END.len();
                    }
                    None => {
                        // Keep what could be the start of the end marker; the rest is paste.
                        let keep = partial_suffix(rest, PASTE_END);
                        take_paste(paste, &rest[..rest.len() - keep]);
                        at = self.pending.len() - keep;
                        break;
                    }
                }
                continue;
            }
            match parse(&self.pending[at..]) {
                Parsed::Done(event, used) => {
                    if event.is_none() && self.pending[at..].starts_with(PASTE_START) {
                        self.paste = Some(Vec::new());
                    }
                    events.extend(event);
                    at += used;
                }
                Parsed::NeedMore => break,
            }
        }
        self.pending.drain(..at);
        events
    }

    /// Nothing more has come for [`ESC_WAIT`]: an Esc waiting for what might follow it was the
    /// Esc key (and an unfinished sequence after it is dropped).
    pub fn flush(&mut self) -> Option<Event> {
        if self.paste.is_some() {
            return None; // a paste may pause; its end marker will come
        }
        let was_esc = self.pending.first() == Some(&0x1b);
        self.pending.clear();
        was_esc.then(|| plain(KeyCode::Esc))
    }

    /// Whether an Esc (or the start of a sequence) is waiting: then [`InputParser::flush`] is due
    /// after [`ESC_WAIT`] of quiet.
    pub fn waiting(&self) -> bool {
        self.paste.is_none() && self.pending.first() == Some(&0x1b)
    }
}

fn take_paste(paste: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_PASTE.saturating_sub(paste.len());
    paste.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// How many bytes at the end of `hay` are a proper prefix of `needle`.
fn partial_suffix(hay: &[u8], needle: &[u8]) -> usize {
    (1..needle.len().min(hay.len() + 1))
        .rev()
        .find(|&n| hay.ends_with(&needle[..n]))
        .unwrap_or(0)
}

fn parse(b: &[u8]) -> Parsed {
    match b[0] {
        0x1b => parse_escape(b),
        b'\r' | b'\n' => Parsed::Done(Some(plain(KeyCode::Enter)), lf_after_cr(b)),
        b'\t' => Parsed::Done(Some(plain(KeyCode::Tab)), 1),
        0x7f | 0x08 => Parsed::Done(Some(plain(KeyCode::Backspace)), 1),
        0x00 => Parsed::Done(Some(key(KeyCode::Char(' '), KeyModifiers::CONTROL)), 1),
        c @ 0x01..=0x1a => Parsed::Done(
            Some(key(KeyCode::Char(char::from(b'a' + c - 1)), KeyModifiers::CONTROL)),
            1,
        ),
        0x1c..=0x1f => Parsed::Done(None, 1),
        _ => parse_char(b, KeyModifiers::NONE, 0),
    }
}

/// A terminal in "newline" mode sends CR LF for Enter: one key, not two.
fn lf_after_cr(b: &[u8]) -> usize {
    if b.starts_with(b"\r\n") { 2 } else { 1 }
}

/// One UTF-8 character at `b[skip..]`, as a key with `modifiers` (Shift added for capitals).
fn parse_char(b: &[u8], modifiers: KeyModifiers, skip: usize) -> Parsed {
    let rest = &b[skip..];
    let len = match rest[0] {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        // A stray continuation byte or an invalid lead: dropped.
        _ => return Parsed::Done(None, skip + 1),
    };
    if rest.len() < len {
        return Parsed::NeedMore;
    }
    match std::str::from_utf8(&rest[..len]).ok().and_then(|s| s.chars().next()) {
        Some(c) => {
            let shift = if c.is_uppercase() {
                KeyModifiers::SHIFT
            } else {
                KeyModifiers::NONE
            };
            Parsed::Done(Some(key(KeyCode::Char(c), modifiers | shift)), skip + len)
        }
        None => Parsed::Done(None, skip + 1),
    }
}

fn parse_escape(b: &[u8]) -> Parsed {
    let Some(&second) = b.get(1) else {
        return Parsed::NeedMore; // Esc alone, or the start of a sequence: `flush` decides
    };
    match second {
        b'[' => parse_csi(b),
        b'O' => match b.get(2) {
            None => Parsed::NeedMore,
            Some(&c) => Parsed::Done(ss3_key(c).map(plain), 3),
        },
        // Esc Esc: the first was the Esc key; the second starts whatever comes next.
        0x1b => Parsed::Done(Some(plain(KeyCode::Esc)), 1),
        // Alt+Enter, Alt+Backspace, Alt+letter: the key after it, with Alt.
        b'\r' => Parsed::Done(Some(key(KeyCode::Enter, KeyModifiers::ALT)), 2),
        0x7f => Parsed::Done(Some(key(KeyCode::Backspace, KeyModifiers::ALT)), 2),
        0x20..=0x7e | 0x80.. => parse_char(b, KeyModifiers::ALT, 1),
        _ => Parsed::Done(Some(plain(KeyCode::Esc)), 1),
    }
}

/// `Esc O x`: the application-mode cursor keys, Home/End, F1–F4.
fn ss3_key(c: u8) -> Option<KeyCode> {
    Some(match c {
        b'A' => KeyCode::Up,
        b'B' => KeyCode::Down,
        b'C' => KeyCode::Right,
        b'D' => KeyCode::Left,
        b'H' => KeyCode::Home,
        b'F' => KeyCode::End,
        b'P' => KeyCode::F(1),
        b'Q' => KeyCode::F(2),
        b'R' => KeyCode::F(3),
        b'S' => KeyCode::F(4),
        b'M' => KeyCode::Enter,
        _ => return None,
    })
}

/// `Esc [ params final`: read to its final byte (0x40–0x7e), whatever it is.
fn parse_csi(b: &[u8]) -> Parsed {
    let Some(end) = b[2..].iter().position(|&c| (0x40..=0x7e).contains(&c)) else {
        // Parameters so far; a sequence longer than any key's is garbage: drop it.
        return if b.len() > 32 {
            Parsed::Done(None, b.len())
        } else {
            Parsed::NeedMore
        };
    };
    let used = 2 + end + 1;
    let params = &b[2..2 + end];
    let last = b[2 + end];
    // `1;2A` is Shift+Up, `1;5A` Ctrl+Up: the second number is 1 + a bit set of modifiers.
    let mut numbers = params
        .split(|&c| c == b';')
        .map(|p| std::str::from_utf8(p).ok().and_then(|s| s.parse::<u16>().ok()));
    let first = numbers.next().flatten();
    let modifiers = match numbers.next().flatten() {
        Some(m) if m > 1 => {
            let bits = m - 1;
            let mut mods = KeyModifiers::NONE;
            if bits & 1 != 0 {
                mods |= KeyModifiers::SHIFT;
            }
            if bits & 2 != 0 {
                mods |= KeyModifiers::ALT;
            }
            if bits & 4 != 0 {
                mods |= KeyModifiers::CONTROL;
            }
            mods
        }
        _ => KeyModifiers::NONE,
    };
    let code = match (last, first) {
        (b'A', _) => Some(KeyCode::Up),
        (b'B', _) => Some(KeyCode::Down),
        (b'C', _) => Some(KeyCode::Right),
        (b'D', _) => Some(KeyCode::Left),
        (b'H', _) => Some(KeyCode::Home),
        (b'F', _) => Some(KeyCode::End),
        (b'Z', _) => Some(KeyCode::BackTab),
        (b'~', Some(1 | 7)) => Some(KeyCode::Home),
        (b'~', Some(4 | 8)) => Some(KeyCode::End),
        (b'~', Some(2)) => Some(KeyCode::Insert),
        (b'~', Some(3)) => Some(KeyCode::Delete),
        (b'~', Some(5)) => Some(KeyCode::PageUp),
        (b'~', Some(6)) => Some(KeyCode::PageDown),
        // `Esc [200~` opens a paste: `feed` sees it and collects until `Esc [201~`.
        _ => None,
    };
    let modifiers = if code == Some(KeyCode::BackTab) {
        modifiers | KeyModifiers::SHIFT
    } else {
        modifiers
    };
    Parsed::Done(code.map(|c| key(c, modifiers)), used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<(KeyCode, KeyModifiers)> {
        let mut p = InputParser::new();
        let mut out: Vec<Event> = p.feed(bytes);
        out.extend(p.flush());
        out.into_iter()
            .filter_map(|e| match e {
                Event::Key(k) => Some((k.code, k.modifiers)),
                _ => None,
            })
            .collect()
    }

    const NONE: KeyModifiers = KeyModifiers::NONE;

    #[test]
    fn letters_enter_tab_backspace_and_ctrl_c() {
        assert_eq!(
            keys(b"rS\r\t\x7f\x03"),
            vec![
                (KeyCode::Char('r'), NONE),
                (KeyCode::Char('S'), KeyModifiers::SHIFT),
                (KeyCode::Enter, NONE),
                (KeyCode::Tab, NONE),
                (KeyCode::Backspace, NONE),
                (KeyCode::Char('c'), KeyModifiers::CONTROL),
            ]
        );
        assert_eq!(keys(b"\r\n"), vec![(KeyCode::Enter, NONE)], "CR LF is one Enter");
        assert_eq!(
            keys("é✓".as_bytes()),
            vec![(KeyCode::Char('é'), NONE), (KeyCode::Char('✓'), NONE)]
        );
    }

    #[test]
    fn arrows_home_end_pages_in_every_form_terminals_send() {
        for (bytes, want) in [
            (&b"\x1b[A"[..], KeyCode::Up),
            (b"\x1bOB", KeyCode::Down),
            (b"\x1b[C", KeyCode::Right),
            (b"\x1bOD", KeyCode::Left),
            (b"\x1b[H", KeyCode::Home),
            (b"\x1bOH", KeyCode::Home),
            (b"\x1b[1~", KeyCode::Home),
            (b"\x1b[7~", KeyCode::Home),
            (b"\x1b[F", KeyCode::End),
            (b"\x1b[4~", KeyCode::End),
            (b"\x1b[8~", KeyCode::End),
            (b"\x1b[5~", KeyCode::PageUp),
            (b"\x1b[6~", KeyCode::PageDown),
            (b"\x1b[3~", KeyCode::Delete),
        ] {
            assert_eq!(keys(bytes), vec![(want, NONE)], "{bytes:?}");
        }
        assert_eq!(keys(b"\x1b[Z"), vec![(KeyCode::BackTab, KeyModifiers::SHIFT)]);
        assert_eq!(keys(b"\x1b[1;5A"), vec![(KeyCode::Up, KeyModifiers::CONTROL)]);
    }

    #[test]
    fn a_lone_esc_is_known_only_when_nothing_follows() {
        let mut p = InputParser::new();
        assert!(p.feed(b"\x1b").is_empty());
        assert!(p.waiting());
        assert_eq!(p.flush(), Some(plain(KeyCode::Esc)));
        assert!(!p.waiting());
        assert_eq!(keys(b"\x1b\x1b[A"), vec![(KeyCode::Esc, NONE), (KeyCode::Up, NONE)]);
        assert_eq!(keys(b"\x1bq"), vec![(KeyCode::Char('q'), KeyModifiers::ALT)]);
    }

    #[test]
    fn a_sequence_split_across_packets_waits_for_its_end() {
        let mut p = InputParser::new();
        assert!(p.feed(b"\x1b[").is_empty());
        assert!(p.feed(b"6").is_empty());
        assert_eq!(p.feed(b"~j"), vec![plain(KeyCode::PageDown), plain(KeyCode::Char('j'))]);
        assert!(p.feed(&[0xc3]).is_empty(), "half a UTF-8 character");
        assert_eq!(p.feed(&[0xa9]), vec![plain(KeyCode::Char('é'))]);
    }

    #[test]
    fn unknown_sequences_are_dropped_whole() {
        // Focus in/out, a mouse report, F12: none becomes letters.
        assert_eq!(
            keys(b"\x1b[I\x1b[O\x1b[<0;10;5M\x1b[24~x"),
            vec![(KeyCode::Char('x'), NONE)]
        );
        assert_eq!(keys(&[0xff, b'y']), vec![(KeyCode::Char('y'), NONE)]);
    }

    #[test]
    fn bracketed_paste_is_one_event_even_across_packets() {
        let mut p = InputParser::new();
        assert!(p.feed(b"\x1b[200~hello ").is_empty());
        assert!(p.feed(b"world\x1b[20").is_empty());
        assert_eq!(p.flush(), None, "a paste may pause");
        assert_eq!(
            p.feed(b"1~q"),
            vec![Event::Paste("hello world".into()), plain(KeyCode::Char('q'))]
        );
    }
}
