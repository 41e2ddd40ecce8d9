use std::fmt;

/// A visitor's address, checked for syntax (by `email_address`), RFC 5321 length limits, and that
/// lettre can put it in an envelope. No display name, no CR/LF/NUL: it may go into a mail header.
#[derive(Clone, PartialEq, Eq)]
pub struct VisitorEmail(String);

/// RFC 5321 §4.5.3.1: local part ≤ 64 octets, domain ≤ 255, and a path of ≤ 256 octets
/// including the angle brackets, so the address itself is ≤ 254.
const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 255;
const MAX_ADDRESS: usize = 254;

impl VisitorEmail {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("Please enter your email address, so we can confirm the message is yours.".into());
        }
        if s.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
            return Err("The email address must be on one line.".into());
        }
        if s.len() > MAX_ADDRESS {
            return Err(format!(
                "That email address is too long (at most {MAX_ADDRESS} characters)."
            ));
        }
        let invalid =
            || "That doesn't look like an email address (expected something like name@example.org).".to_string();
        let (local, domain) = s.rsplit_once('@').ok_or_else(invalid)?;
        if local.len() > MAX_LOCAL || domain.len() > MAX_DOMAIN {
            return Err(invalid());
        }
        let options = email_address::Options::default().without_display_text();
        email_address::EmailAddress::parse_with_options(s, options).map_err(|_| invalid())?;
        // A bare "user@localhost" parses, but it can never be a visitor's mailbox.
        if !domain.contains('.') && !domain.starts_with('[') {
            return Err(invalid());
        }
        // What reaches the SMTP envelope must be something lettre accepts.
        s.parse::<lettre::Address>().map_err(|_| invalid())?;
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuild from a value that was parsed before it was stored.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for VisitorEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for VisitorEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VisitorEmail({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "a@example.org",
            "first.last+tag@sub.example.co.uk",
            "  padded@example.org  ",
        ] {
            assert!(VisitorEmail::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            VisitorEmail::parse(" x@example.org ").unwrap().as_str(),
            "x@example.org"
        );
    }

    #[test]
    fn rejects_malformed_and_injected_addresses() {
        for bad in [
            "",
            "no-at-sign",
            "a@b",
            "a@example.org\r\nBcc: victim@example.org",
            "a@example.org\nX: y",
            "a\0@example.org",
            "Display Name <a@example.org>",
            "a@@example.org",
        ] {
            assert!(VisitorEmail::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn enforces_rfc5321_lengths() {
        let local = "a".repeat(65);
        assert!(VisitorEmail::parse(&format!("{local}@example.org")).is_err());
        let long_domain = format!("{}.org", "d".repeat(250));
        assert!(VisitorEmail::parse(&format!("a@{long_domain}")).is_err());
        assert!(VisitorEmail::parse(&format!("{}@example.org", "a".repeat(64))).is_ok());
    }
}
