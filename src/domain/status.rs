use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a message is in its life. The only way to change it is [`Status::apply`], so an illegal
/// move (releasing an unverified message, resending a released one) is an error, never a no-op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Stored; the visitor has not confirmed yet.
    Pending,
    /// The visitor confirmed; waiting for a moderator (or auto-release).
    Verified,
    /// Delivered to the team.
    Released,
    /// In the trash; restorable.
    Deleted,
    /// Caught by a bot filter.
    Spam,
}

/// Something that changes a message's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Verify,
    Release,
    Resend,
    Delete,
    /// Restore out of the trash to where it was before.
    Restore {
        before_delete: Status,
    },
    /// A moderator says a message a bot filter caught is not spam: back to pending.
    NotSpam,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {transition} a {from} message")]
pub struct IllegalTransition {
    pub from: Status,
    pub transition: &'static str,
}

impl Transition {
    pub fn verb(self) -> &'static str {
        match self {
            Transition::Verify => "verify",
            Transition::Release => "release",
            Transition::Resend => "resend the verification of",
            Transition::Delete => "delete",
            Transition::Restore { .. } => "restore",
            Transition::NotSpam => "mark as not spam",
        }
    }
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Verified,
        Status::Released,
        Status::Deleted,
        Status::Spam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Verified => "verified",
            Status::Released => "released",
            Status::Deleted => "deleted",
            Status::Spam => "spam",
        }
    }

    /// The state machine: the status after `t`, or why `t` is not allowed from here.
    pub fn apply(self, t: Transition) -> Result<Status, IllegalTransition> {
        use Status::*;
        let next = match (self, t) {
            (Pending, Transition::Verify) => Some(Verified),
            (Verified, Transition::Release) => Some(Released),
            (Pending, Transition::Resend) => Some(Pending),
            (Spam, Transition::NotSpam) => Some(Pending),
            (Pending | Verified | Released | Spam, Transition::Delete) => Some(Deleted),
            (Deleted, Transition::Restore { before_delete }) if before_delete != Deleted => Some(before_delete),
            _ => None,
        };
        next.ok_or(IllegalTransition {
            from: self,
            transition: t.verb(),
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown status {s:?} (expected pending, verified, released, deleted or spam)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn the_happy_path() {
        assert_eq!(Pending.apply(Transition::Verify), Ok(Verified));
        assert_eq!(Verified.apply(Transition::Release), Ok(Released));
    }

    #[test]
    fn illegal_moves_are_errors() {
        assert!(Pending.apply(Transition::Release).is_err());
        assert!(Released.apply(Transition::Resend).is_err());
        assert!(Verified.apply(Transition::Verify).is_err());
        assert!(Deleted.apply(Transition::Delete).is_err());
        assert!(Pending.apply(Transition::Restore { before_delete: Pending }).is_err());
        let e = Pending.apply(Transition::Release).unwrap_err();
        assert_eq!(e.to_string(), "cannot release a pending message");
    }

    #[test]
    fn delete_and_restore_round_trip() {
        for s in [Pending, Verified, Released, Spam] {
            let d = s.apply(Transition::Delete).unwrap();
            assert_eq!(d, Deleted);
            assert_eq!(d.apply(Transition::Restore { before_delete: s }), Ok(s));
        }
    }

    #[test]
    fn only_spam_can_be_marked_not_spam() {
        assert_eq!(Spam.apply(Transition::NotSpam), Ok(Pending));
        for s in [Pending, Verified, Released, Deleted] {
            assert!(s.apply(Transition::NotSpam).is_err());
        }
    }

    #[test]
    fn parses_from_text() {
        assert_eq!("Verified".parse::<Status>(), Ok(Verified));
        assert!("bogus".parse::<Status>().is_err());
    }
}
