//! Every string the dashboard shows a moderator, in one place. Values from the database are not
//! made safe here; the view does that (see `safe.rs`), so this module only builds sentences.

use crate::domain::{MessageId, Status};

use super::action::{Outcome, Report, Verb};
use super::state::Tab;

pub const APP: &str = "formgate";
pub const SEPARATOR: &str = "·";

pub fn tab_title(tab: Tab) -> &'static str {
    match tab {
        Tab::Pending => "Pending",
        Tab::Verified => "Verified",
        Tab::Released => "Released",
        Tab::Trash => "Trash",
        Tab::Spam => "Spam",
    }
}

/// Column titles of the message table: marks, id, age, name, email, subject, mail.
pub const COLUMNS: [&str; 7] = ["", "#", "age", "name", "email", "subject", "mail"];
/// The column after `age` when the site has several forms.
pub const FORM_COLUMN: &str = "form";

pub const MARK_CURSOR: &str = ">";
pub const MARK_SELECTED: &str = "*";
pub const MARK_FLAGGED: &str = "⚠";
pub const NONE: &str = "—";

pub const BANNER_DB_DOWN: &str = " ⚠ database unavailable: showing what was last read; retrying every second ";
pub const DB_BACK: &str = "database is reachable again";
pub const LOADING: &str = "loading…";

pub fn db_timeout(secs: u64) -> String {
    format!("the database did not answer within {secs} seconds")
}

/// `form`: the title of the form shown, when one is picked.
pub fn empty_tab(tab: Tab, filter: Option<&str>, form: Option<&str>) -> String {
    match (filter, form) {
        (Some(f), None) => format!("no {} message matches “{f}” (Esc clears the filter)", status_word(tab)),
        (None, None) => format!("no {} messages", status_word(tab)),
        (Some(f), Some(form)) => format!(
            "no {} message of {form} matches “{f}” (Esc clears the filter)",
            status_word(tab)
        ),
        (None, Some(form)) => format!("no {} messages of {form} (f shows all forms)", status_word(tab)),
    }
}

fn status_word(tab: Tab) -> &'static str {
    match tab {
        Tab::Pending => "pending",
        Tab::Verified => "verified",
        Tab::Released => "released",
        Tab::Trash => "trashed",
        Tab::Spam => "spam",
    }
}

pub fn as_actor(actor: &str) -> String {
    format!("as {actor}")
}

pub fn filter_badge(filter: &str) -> String {
    format!("/{filter}")
}

pub const FILTER_PROMPT: &str = "/";
pub const FILTER_HINT: &str = "type to filter name, email, subject, message, fields · Enter apply · Esc cancel";

// --- mail state of a row ------------------------------------------------------------------------

pub const MAIL_QUEUED: &str = "queued";
pub const MAIL_SENT: &str = "sent";
pub const MAIL_DEAD: &str = "dead-lettered";
/// A pending message whose verification was withheld (mail cap or suppressed address).
pub const MAIL_HELD: &str = "held";

pub fn mail_retrying(attempts: i64, error: Option<&str>) -> String {
    match error {
        Some(e) => format!("retrying ({attempts}, {e})"),
        None => format!("retrying ({attempts})"),
    }
}

// --- verbs and their results --------------------------------------------------------------------

fn past(verb: Verb) -> &'static str {
    match verb {
        Verb::Release => "released",
        Verb::Resend => "resent",
        Verb::Delete => "deleted",
        Verb::Restore => "restored",
        Verb::NotSpam => "marked not spam",
    }
}

pub fn running(verb: Verb, n: usize) -> String {
    let doing = match verb {
        Verb::Release => "releasing",
        Verb::Resend => "resending the verification of",
        Verb::Delete => "deleting",
        Verb::Restore => "restoring",
        Verb::NotSpam => "marking as not spam",
    };
    format!("{doing} {}…", messages(n))
}

fn messages(n: usize) -> String {
    if n == 1 {
        "1 message".into()
    } else {
        format!("{n} messages")
    }
}

pub fn ids(ids: &[MessageId]) -> String {
    ids.iter().map(|id| format!("#{id}")).collect::<Vec<_>>().join(" ")
}

fn outcome(id: MessageId, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Released { mailed: true, .. } => format!("released #{id} (mailed to staff)"),
        Outcome::Released { mailed: false, .. } => {
            format!("released #{id} — no staff_inbox configured, not mailed")
        }
        Outcome::Resent { no_mail: None } => format!("resent the verification mail of #{id}"),
        Outcome::Resent { no_mail: Some(why) } => format!("resend of #{id} recorded, but no mail: {why}"),
        Outcome::Deleted => format!("moved #{id} to the trash (u restores it)"),
        Outcome::Restored(to) => format!("restored #{id} to {to}"),
        Outcome::NotSpam { no_mail: None } => format!("#{id} is not spam: pending, verification mail queued"),
        Outcome::NotSpam { no_mail: Some(why) } => format!("#{id} is not spam: pending, but no mail: {why}"),
    }
}

/// The status line after a verb: one message's outcome or error verbatim, or "3 released, 1
/// failed: …" for several.
pub fn report(report: &Report) -> String {
    if let [(id, result)] = report.results.as_slice() {
        return match result {
            Ok(o) => outcome(*id, o),
            Err(e) => e.clone(),
        };
    }
    let ok = report.results.iter().filter(|(_, r)| r.is_ok()).count();
    let errors: Vec<&String> = report.results.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    let mut s = format!("{ok} {}", past(report.verb));
    let unmailed = report
        .results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(Outcome::Released { mailed: false, .. })))
        .count();
    if unmailed > 0 {
        s.push_str(&format!(" ({unmailed} not mailed: no staff_inbox configured)"));
    }
    let withheld = report
        .results
        .iter()
        .filter(|(_, r)| {
            matches!(
                r,
                Ok(Outcome::Resent { no_mail: Some(_) } | Outcome::NotSpam { no_mail: Some(_) })
            )
        })
        .count();
    if withheld > 0 {
        s.push_str(&format!(
            " ({withheld} recorded, but no mail: suppressed or held by a cap)"
        ));
    }
    if let Some(first) = errors.first() {
        s.push_str(&format!(", {} failed: {first}", errors.len()));
        if errors.len() > 1 {
            s.push_str(&format!(" (and {} more)", errors.len() - 1));
        }
    }
    s
}

pub fn not_allowed(verb: Verb) -> &'static str {
    match verb {
        Verb::Release => "only verified messages can be released (tab 2)",
        Verb::Resend => "only pending messages can have their verification resent (tab 1)",
        Verb::Delete => "these messages are already in the trash",
        Verb::Restore => "only messages in the trash can be restored (tab 4)",
        Verb::NotSpam => "only messages a bot filter caught can be marked not spam (tab 5)",
    }
}

pub const NOTHING_HERE: &str = "no message here";
pub const FINISHING: &str = "finishing what was started before quitting…";
pub const CANCELLED: &str = "cancelled; nothing changed";
pub const VIEWER_REFUSED: &str = "you are a viewer: you can read everything and change nothing";

pub fn selected(n: usize) -> String {
    format!("{} selected", messages(n))
}

// --- the confirm dialog -------------------------------------------------------------------------

pub const CONFIRM_TITLE: &str = " Confirm ";

pub fn confirm_question(verb: Verb, n: usize) -> String {
    let what = if n == 1 {
        "this message".to_string()
    } else {
        messages(n)
    };
    match verb {
        Verb::Release => format!("Release {what} to the staff inbox?"),
        Verb::Resend => format!("Resend the verification mail for {what}?"),
        Verb::Delete => format!("Move {what} to the trash?"),
        Verb::Restore => format!("Restore {what}?"),
        Verb::NotSpam => format!("Mark {what} as not spam?"),
    }
}

pub fn confirm_note(verb: Verb) -> &'static str {
    match verb {
        Verb::Release => "The team gets each one by mail, with Reply-To the visitor.",
        Verb::Resend => "Each visitor gets a new link; older links stop working.",
        Verb::Delete => "The trash (tab 4) keeps them; u restores.",
        Verb::Restore => "Each goes back to where it was before it was deleted.",
        Verb::NotSpam => "Each goes back to pending and its sender gets the verification mail.",
    }
}

pub fn skipped(n: usize) -> String {
    format!("{} cannot be acted on here and will be left alone.", messages(n))
}

pub const CONFIRM_KEYS: &str = "y / Enter: yes     n / Esc: no";

// --- the detail pane ----------------------------------------------------------------------------

pub fn detail_loading(id: MessageId) -> String {
    format!("loading #{id}…")
}

pub fn detail_failed(id: MessageId, error: &str) -> String {
    format!("could not load #{id}: {error}")
}

pub const FLAGGED_NOTE: &str =
    "⚠ This message contains control or text-direction characters. They are shown as \\u{…} escapes.";
pub const SUBJECT: &str = "Subject";
/// Above the form's own fields (those beyond name, email, subject and message).
pub const FIELDS: &str = "Fields";
pub const NO_SUBJECT: &str = "(no subject)";
pub const CONSENT: &str = "Consent record";
pub const IP: &str = "IP";
pub const USER_AGENT: &str = "User agent";
pub const SUBMITTED: &str = "Submitted";
pub const LINK_OPENED: &str = "Link opened";
pub const VERIFIED: &str = "Verified";
pub const RELEASED: &str = "Released";
pub const DELETED: &str = "Deleted";
pub const MAILS_SENT: &str = "Verification mails";
pub const AUDIT: &str = "Audit trail";
pub const OUTBOX: &str = "Destinations";
pub const NO_MAIL: &str = "nothing sent for this message";
/// Under the destinations, while one has ended (sent or dead).
pub const REDELIVER_HINT: &str = "Tab picks a destination · D sends it again (none picked: every dead one)";
pub const MAIL_SENDING: &str = "sending";
pub const LAST_ERROR: &str = "last error:";
pub const NOT_YET: &str = "not yet";
pub const UNKNOWN: &str = "unknown";

/// `D` with no destination picked and none dead.
pub const NOTHING_DEAD: &str = "no dead delivery here: Tab picks a sent one to send again";

/// `D` on a destination still queued, being sent or retrying.
pub fn still_under_way(number: usize, delivery: &str) -> String {
    format!("destination {number} is {delivery}: it goes out by itself")
}

pub fn redelivering(number: Option<usize>) -> String {
    match number {
        Some(n) => format!("sending destination {n} again…"),
        None => "sending every dead delivery again…".into(),
    }
}

/// After `D`: which destinations were queued again (`3 webhook, 4 copy`).
pub fn redelivered(id: MessageId, queued: &[(usize, &str)]) -> String {
    let which: Vec<String> = queued.iter().map(|(n, what)| format!("{n} {what}")).collect();
    format!("#{id}: queued again: {}", which.join(", "))
}

pub fn attempts(n: i64) -> String {
    if n == 1 {
        "1 attempt".into()
    } else {
        format!("{n} attempts")
    }
}

pub fn next_attempt(when: &str) -> String {
    format!("next {when}")
}

pub fn ago(age: &str) -> String {
    format!("{age} ago")
}

pub fn status_change(from: Option<Status>, to: Option<Status>) -> String {
    match (from, to) {
        (Some(f), Some(t)) => format!("{f} → {t}"),
        (None, Some(t)) => format!("→ {t}"),
        (Some(f), None) => f.to_string(),
        (None, None) => String::new(),
    }
}

// --- forms (`f`) -------------------------------------------------------------------------------

pub const FORM_PICKER_TITLE: &str = " Show the messages of ";
pub const ALL_FORMS: &str = "All forms";
pub const ONE_FORM: &str = "this site has one form: there is no other to show";
pub const HINT_FORM_PICKER: &str = "j/k move · Enter show · Esc / f cancel";

/// A form as the picker and the detail pane name it: `Quote requests (quote)`.
pub fn form_name(title: &str, slug: &str) -> String {
    format!("{title} ({slug})")
}

// --- keys ---------------------------------------------------------------------------------------

pub const HELP_TITLE: &str = " Keys ";
/// Below the keys: how verbs pick their messages, and how to leave.
pub const HELP_FOOTER: [&str; 3] = [
    "r s d u n act on the selected messages, else on the cursor's; on more",
    "than one message (and for d and n, always) a dialog asks first.",
    "? / Esc / q closes this help",
];

/// The key the help lists after `/` when the site has several forms.
pub const FORM_KEY: (&str, &str) = ("f", "one form's messages (or all); the counts follow");

/// Every key, for the help overlay (and the README).
pub const KEYS: &[(&str, &str)] = &[
    ("j / ↓   k / ↑", "next / previous message (in a message: scroll)"),
    ("g / Home  G / End", "first / last loaded message"),
    ("PgDn PgUp C-f C-b", "a page down / up (more rows load as you go)"),
    ("Tab  S-Tab  1-5", "prev/next tab: Pending Verified Released Trash Spam"),
    ("Enter", "open the message: text, consent, audit, destinations"),
    ("Tab / S-Tab  D", "in a message: pick a destination / send it again"),
    ("space  a", "select / unselect, then down; a: all loaded / none"),
    ("r", "release: mail it to the staff inbox (Verified)"),
    ("s", "resend the verification mail (Pending)"),
    ("d", "delete: move to the trash"),
    ("u / n", "restore from the trash / not spam: back to pending"),
    ("y / Enter  n / Esc", "in the confirm dialog: yes / no"),
    ("/", "filter: type, Enter applies, Esc cancels"),
    ("Esc", "close the message; else clear selection, then filter"),
    ("S", "suppressed addresses (x lifts one, after asking)"),
    ("?", "this help"),
    ("q / Ctrl-C", "quit (q in a message closes it)"),
];

/// The short key hint at the bottom, by what is on screen.
pub fn hint_table(tab: Tab) -> &'static str {
    match tab {
        Tab::Pending => "s resend · d delete · space select · enter open · / filter · ? help · q quit",
        Tab::Verified => "r release · d delete · space select · enter open · / filter · ? help · q quit",
        Tab::Released => "d delete · space select · enter open · / filter · 1-5 tabs · ? help · q quit",
        Tab::Trash => "u restore · space select · enter open · / filter · 1-5 tabs · ? help · q quit",
        Tab::Spam => "n not spam · d delete · space select · enter open · / filter · ? help · q quit",
    }
}

pub const HINT_DETAIL: &str = "j/k scroll · r s d u act · Tab pick · D deliver again · Esc back · ? help";
pub const HINT_CONFIRM: &str = "y / Enter confirm · n / Esc cancel";
pub const HINT_HELP: &str = "? / Esc close help";
pub const HINT_SUPPRESSED: &str = "j/k move · x lift the suppression · S / Esc / q close";

// --- the suppressed addresses (`S`) -------------------------------------------------------------

pub const SUPPRESSED_TITLE: &str = " Suppressed addresses: never mailed until lifted ";
pub const SUPPRESSED_COLUMNS: [&str; 3] = ["address", "since", "reason"];
pub const NO_SUPPRESSED: &str = "no suppressed addresses";
pub const UNSUPPRESSING: &str = "lifting the suppression…";

pub fn suppressed_failed(error: &str) -> String {
    format!("could not read the suppressed addresses: {error}")
}

pub fn unsuppressed(address: &str) -> String {
    format!("{address}: suppression lifted, it will be mailed again")
}

pub fn not_suppressed(address: &str) -> String {
    format!("{address} was not suppressed (any more)")
}

pub fn unsuppress_question() -> &'static str {
    "Lift the suppression of this address?"
}

pub const UNSUPPRESS_NOTE: &str = "Verification mail to it goes out again (within the caps).";
