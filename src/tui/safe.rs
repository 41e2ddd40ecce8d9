//! Visitor text is untrusted, and a terminal obeys what it is sent: `ESC[2J` clears the screen,
//! OSC 52 writes the moderator's clipboard, OSC 0 retitles the window, a C1 `CSI` (U+009B) does
//! the same as `ESC[` on some terminals, and bidi overrides make `evil.example` read as something
//! else. Everything the dashboard shows from the database passes [`display_safe`], which spells
//! such characters out as `\u{1b}`-style escapes and says that it did, so the message can be
//! marked. The stored text is never changed.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters that must never reach the terminal as they are.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        // C0 controls (newline and tab included: a cell is one line) and DEL
        '\u{0}'..='\u{1f}' | '\u{7f}'
        // C1 controls: U+009B is a complete CSI on terminals that honour 8-bit controls
        | '\u{80}'..='\u{9f}'
        // bidi embeddings, overrides and isolates, and the marks that steer them
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}'
        // line and paragraph separators: some terminals break lines on them
        | '\u{2028}' | '\u{2029}')
}

/// Text that is safe to put in a cell, and whether anything had to be escaped. Tabs become one
/// space (harmless, but a cell has no tab stops) and do not flag the text; every other character
/// [`is_unsafe`] matches becomes `\u{…}` and flags it.
pub fn display_safe(s: &str) -> (Cow<'_, str>, bool) {
    if !s.chars().any(is_unsafe) {
        return (Cow::Borrowed(s), false);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut flagged = false;
    for c in s.chars() {
        if c == '\t' {
            out.push(' ');
        } else if is_unsafe(c) {
            flagged = true;
            // Writing into a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    (Cow::Owned(out), flagged)
}

/// [`display_safe`] without the flag: for text whose flag is computed elsewhere (or not needed).
pub fn safe(s: &str) -> Cow<'_, str> {
    display_safe(s).0
}

/// Whether [`display_safe`] would flag `s`.
pub fn flagged(s: &str) -> bool {
    s.chars().any(|c| c != '\t' && is_unsafe(c))
}

/// A multi-line text (a message body) for line-by-line display: split on newlines first (the
/// only control character given a meaning: a line break), then each line made safe. Returns the
/// lines and whether any was flagged.
pub fn safe_lines(s: &str) -> (Vec<Cow<'_, str>>, bool) {
    let mut flagged = false;
    let lines = s
        .split('\n')
        .map(|line| {
            let (text, f) = display_safe(line);
            flagged |= f;
            text
        })
        .collect();
    (lines, flagged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_borrowed_and_not_flagged() {
        for s in [
            "Ada Lovelace",
            "Grüße aus Köln",
            "日本語のメッセージ",
            "emoji 🎉 ok",
            "",
        ] {
            let (out, flagged) = display_safe(s);
            assert!(matches!(out, Cow::Borrowed(_)), "{s:?}");
            assert_eq!((out.as_ref(), flagged), (s, false));
        }
    }

    #[test]
    fn terminal_escapes_are_spelled_out_and_flagged() {
        let cases = [
            ("a\x1b[2Jb", "a\\u{1b}[2Jb"),
            ("\x1b]52;c;aGk=\x07", "\\u{1b}]52;c;aGk=\\u{7}"),
            ("\x1b]0;pwned\x07", "\\u{1b}]0;pwned\\u{7}"),
            ("x\u{9b}31m", "x\\u{9b}31m"),
            ("evil\u{202e}gpj.exe", "evil\\u{202e}gpj.exe"),
            ("\u{2066}iso\u{2069}", "\\u{2066}iso\\u{2069}"),
            ("del\x7f", "del\\u{7f}"),
            ("cr\r", "cr\\u{d}"),
            ("two\nlines", "two\\u{a}lines"),
            ("sep\u{2028}", "sep\\u{2028}"),
        ];
        for (raw, shown) in cases {
            let (out, flagged) = display_safe(raw);
            assert_eq!(out, shown);
            assert!(flagged, "{raw:?}");
            assert!(flagged_by(&out).is_none(), "{out:?} still has {:?}", flagged_by(&out));
        }
    }

    fn flagged_by(s: &str) -> Option<char> {
        s.chars().find(|&c| is_unsafe(c))
    }

    #[test]
    fn tabs_become_spaces_without_a_flag() {
        assert_eq!(display_safe("a\tb"), (Cow::Owned("a b".into()), false));
        assert!(!flagged("a\tb"));
        assert!(flagged("a\u{85}b"));
    }

    #[test]
    fn bodies_keep_their_line_breaks_and_lose_everything_else() {
        let (lines, flagged) = safe_lines("Hello\n\x1b[31mred\x1b[0m\nbye");
        assert_eq!(lines, ["Hello", "\\u{1b}[31mred\\u{1b}[0m", "bye"]);
        assert!(flagged);
        let (lines, flagged) = safe_lines("just\ntext");
        assert_eq!(lines, ["just", "text"]);
        assert!(!flagged);
    }
}
