//! The mail cap: whether a verification mail may go out. Pure policy over counts the store looks
//! up inside the transaction that would queue the mail (so concurrent posts cannot both pass a
//! cap of one); the store applies the verdict, this module makes it.

use std::collections::HashMap;
use std::fmt;

/// Limits on verification mail. Suppressed addresses are never mailed, whatever the guard says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailGuard {
    /// At most `.0` verification mails to one address within `.1` seconds.
    pub per_address: Option<(i64, i64)>,
    /// At most this many mails of any kind queued within the last hour.
    pub per_hour: Option<i64>,
}

/// Why a verification mail was not queued. Its `Display` is the line stored on the audit trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Withheld {
    /// The address asked for no more mail.
    Suppressed,
    /// The address was mailed within the per-address window already.
    PerAddress { window_secs: i64 },
    /// The hourly limit on all mail was reached.
    Hourly { max: i64 },
    /// The store did not look the address up (a backend bug): nothing is mailed.
    Unchecked,
}

impl Withheld {
    /// The reason without the "verification withheld: " prefix.
    /// One word for it, as the metrics label it.
    pub fn label(&self) -> &'static str {
        match self {
            Withheld::Suppressed => "suppressed",
            Withheld::PerAddress { .. } => "per_address",
            Withheld::Hourly { .. } => "hourly",
            Withheld::Unchecked => "unchecked",
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Withheld::Suppressed => "the address asked for no more mail (suppressed)".into(),
            Withheld::PerAddress { window_secs } => {
                format!("address already mailed within {}", format_window(*window_secs))
            }
            Withheld::Hourly { max } => format!("hourly mail limit ({max}) reached"),
            Withheld::Unchecked => "the address could not be checked".into(),
        }
    }
}

impl fmt::Display for Withheld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "verification withheld: {}", self.reason())
    }
}

/// What the store counted for one mail; None where the guard did not need it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardCounts {
    pub suppressed: bool,
    /// Verification mails to the address within the per-address window.
    pub to_address: Option<i64>,
    /// Mails of any kind queued within the last hour.
    pub last_hour: Option<i64>,
}

/// The one rule: why a verification mail must not go out, if it must not. Suppression wins.
pub fn withhold(guard: &MailGuard, c: &GuardCounts) -> Option<Withheld> {
    if c.suppressed {
        return Some(Withheld::Suppressed);
    }
    if let (Some((max, window_secs)), Some(n)) = (guard.per_address, c.to_address)
        && n >= max
    {
        return Some(Withheld::PerAddress { window_secs });
    }
    if let (Some(max), Some(n)) = (guard.per_hour, c.last_hour)
        && n >= max
    {
        return Some(Withheld::Hourly { max });
    }
    None
}

/// What the store looked up about one address posted in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressLookup {
    /// As posted.
    pub address: String,
    /// As the database lower-cases it (the form suppression and the caps compare).
    pub key: String,
    pub suppressed: bool,
    /// Verification mails to it within the per-address window (0 when that cap is off).
    pub recent: i64,
}

/// The guard's verdict on each post of a batch, in order. `posts` holds each post's address, or
/// None for spam (never mailed, so never withheld). Mails allowed earlier in the batch count, so a
/// batch decides exactly as the same posts one transaction each would.
pub fn batch_verdicts(
    guard: &MailGuard,
    posts: &[Option<&str>],
    lookups: Vec<AddressLookup>,
    mut last_hour: Option<i64>,
) -> Vec<Option<Withheld>> {
    let by_address: HashMap<String, AddressLookup> = lookups.into_iter().map(|l| (l.address.clone(), l)).collect();
    // Per key, not per spelling: Ada@x and ada@x share one cap.
    let mut queued_to: HashMap<String, i64> = HashMap::new();
    posts
        .iter()
        .map(|post| {
            let address = (*post)?;
            let Some(l) = by_address.get(address) else {
                // Every posted address is looked up; a missing one is a backend bug: mail nothing.
                return Some(Withheld::Unchecked);
            };
            let earlier = queued_to.get(&l.key).copied().unwrap_or(0);
            let counts = GuardCounts {
                suppressed: l.suppressed,
                to_address: guard.per_address.map(|_| l.recent + earlier),
                last_hour,
            };
            let verdict = withhold(guard, &counts);
            if verdict.is_none() {
                *queued_to.entry(l.key.clone()).or_default() += 1;
                if let Some(n) = last_hour.as_mut() {
                    *n += 1;
                }
            }
            verdict
        })
        .collect()
}

/// 86400 → "24 h", 1800 → "30 min".
pub fn format_window(secs: i64) -> String {
    if secs % 3600 == 0 {
        format!("{} h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn counts(suppressed: bool, to_address: Option<i64>, last_hour: Option<i64>) -> GuardCounts {
        GuardCounts {
            suppressed,
            to_address,
            last_hour,
        }
    }

    #[test]
    fn one_mail_decided_by_the_table() {
        let both = MailGuard {
            per_address: Some((2, DAY)),
            per_hour: Some(10),
        };
        let off = MailGuard::default();
        #[rustfmt::skip]
        let table: &[(&str, MailGuard, GuardCounts, Option<Withheld>)] = &[
            ("suppressed wins over everything", both, counts(true, Some(9), Some(99)), Some(Withheld::Suppressed)),
            ("suppressed, even with no caps", off, counts(true, None, None), Some(Withheld::Suppressed)),
            ("nothing counted, no caps", off, counts(false, None, None), None),
            ("per address below the cap", both, counts(false, Some(1), Some(0)), None),
            ("per address at the cap", both, counts(false, Some(2), Some(0)), Some(Withheld::PerAddress { window_secs: DAY })),
            ("per address over the cap", both, counts(false, Some(3), Some(0)), Some(Withheld::PerAddress { window_secs: DAY })),
            ("per address before hourly", both, counts(false, Some(2), Some(10)), Some(Withheld::PerAddress { window_secs: DAY })),
            ("hourly below the cap", both, counts(false, Some(0), Some(9)), None),
            ("hourly at the cap", both, counts(false, Some(0), Some(10)), Some(Withheld::Hourly { max: 10 })),
            ("hourly over the cap", both, counts(false, Some(0), Some(11)), Some(Withheld::Hourly { max: 10 })),
            ("a cap off ignores its count", off, counts(false, Some(100), Some(100)), None),
        ];
        for (case, guard, c, expected) in table {
            assert_eq!(withhold(guard, c), *expected, "{case}");
        }
    }

    #[test]
    fn the_stored_reasons_read_as_before() {
        #[rustfmt::skip]
        let table = [
            (Withheld::Suppressed, "verification withheld: the address asked for no more mail (suppressed)"),
            (Withheld::PerAddress { window_secs: DAY }, "verification withheld: address already mailed within 24 h"),
            (Withheld::PerAddress { window_secs: 1800 }, "verification withheld: address already mailed within 30 min"),
            (Withheld::PerAddress { window_secs: 90 }, "verification withheld: address already mailed within 90 s"),
            (Withheld::Hourly { max: 5 }, "verification withheld: hourly mail limit (5) reached"),
            (Withheld::Unchecked, "verification withheld: the address could not be checked"),
        ];
        for (withheld, text) in table {
            assert_eq!(withheld.to_string(), text);
        }
    }

    fn lookup(address: &str, suppressed: bool, recent: i64) -> AddressLookup {
        AddressLookup {
            address: address.into(),
            key: address.to_lowercase(),
            suppressed,
            recent,
        }
    }

    #[test]
    fn a_batch_decided_by_the_table() {
        let cap_one = MailGuard {
            per_address: Some((1, DAY)),
            per_hour: None,
        };
        let hourly_three = MailGuard {
            per_address: None,
            per_hour: Some(3),
        };
        let per_address = Some(Withheld::PerAddress { window_secs: DAY });
        type Row<'a> = (
            &'a str,
            MailGuard,
            Vec<Option<&'a str>>,
            Vec<AddressLookup>,
            Option<i64>,
            Vec<Option<Withheld>>,
        );
        let table: Vec<Row<'_>> = vec![
            (
                "an earlier post to the same address counts, in any letter case",
                cap_one,
                vec![Some("twice@x"), Some("TWICE@x"), Some("Twice@X")],
                vec![
                    lookup("twice@x", false, 0),
                    lookup("TWICE@x", false, 0),
                    lookup("Twice@X", false, 0),
                ],
                None,
                vec![None, per_address, per_address],
            ),
            (
                "mails from before the batch count",
                cap_one,
                vec![Some("old@x")],
                vec![lookup("old@x", false, 1)],
                None,
                vec![per_address],
            ),
            (
                "a withheld post does not count against the next",
                cap_one,
                vec![Some("gone@x"), Some("GONE@x")],
                vec![lookup("gone@x", true, 0), lookup("GONE@x", false, 0)],
                None,
                vec![Some(Withheld::Suppressed), None],
            ),
            (
                "spam is never mailed, so never withheld and never counted",
                cap_one,
                vec![None, Some("a@x"), None],
                vec![lookup("a@x", false, 0)],
                None,
                vec![None, None, None],
            ),
            (
                "the hourly count grows with each mail allowed",
                hourly_three,
                vec![Some("a@x"), Some("b@x"), Some("c@x")],
                vec![
                    lookup("a@x", false, 0),
                    lookup("b@x", false, 0),
                    lookup("c@x", false, 0),
                ],
                Some(1),
                vec![None, None, Some(Withheld::Hourly { max: 3 })],
            ),
            (
                "an address the store did not look up is not mailed",
                cap_one,
                vec![Some("missing@x")],
                vec![],
                None,
                vec![Some(Withheld::Unchecked)],
            ),
        ];
        for (case, guard, posts, lookups, last_hour, expected) in table {
            assert_eq!(batch_verdicts(&guard, &posts, lookups, last_hour), expected, "{case}");
        }
    }
}
