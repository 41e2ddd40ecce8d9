//! What can happen to the dashboard ([`Action`]: a key, a tick, a result coming back) and what it
//! asks the outside world to do ([`Effect`]: read the database, run a use-case).

use crate::actions::Details;
use crate::domain::{MessageId, Status};
use crate::store::MessageSummary;

use super::state::Tab;

/// The verbs and their outcomes are the use-cases' own (`actions.rs`): the CLI runs the same.
pub use crate::actions::{Outcome, Verb};

/// Delete always asks first; the others ask only when they act on several messages.
pub fn always_confirm(verb: Verb) -> bool {
    matches!(verb, Verb::Delete | Verb::NotSpam)
}

/// Sort key of a row (newest first): the keyset `ListQuery::after` takes.
pub type Key = (i64, MessageId);

pub fn key(row: &MessageSummary) -> Key {
    (row.created_at, row.id)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadKind {
    /// A new tab or filter: replace the rows.
    Reset,
    /// The next page below the loaded rows.
    More,
    /// The live refresh of the rows on screen (from the row above the first visible one).
    Refresh,
}

/// One page of the current tab, with the counts (and the open message, when the pane is open).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadRequest {
    /// Answers to anything but the latest request are dropped.
    pub req: u64,
    pub kind: LoadKind,
    pub tab: Tab,
    pub filter: Option<String>,
    /// Only this form's messages, and its counts (its slug).
    pub form: Option<String>,
    pub after: Option<Key>,
    pub limit: i64,
    /// Reload this message's details too (the detail pane stays live).
    pub detail: Option<MessageId>,
}

#[derive(Clone, Debug)]
pub struct Loaded {
    pub request: LoadRequest,
    pub rows: Vec<MessageSummary>,
    pub counts: Vec<(Status, i64)>,
    pub details: Option<Result<Details, String>>,
}

/// The results of one verb on one or more messages, in the order they were run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub verb: Verb,
    pub results: Vec<(MessageId, Result<Outcome, String>)>,
}

#[derive(Clone, Debug)]
pub enum Action {
    // moving
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    NextTab,
    PrevTab,
    GoTab(Tab),
    // choosing and acting
    ToggleSelect,
    SelectAll,
    Open,
    /// Esc: close the pane, else clear the selection, else clear the filter.
    Back,
    Verb(Verb),
    StartFilter,
    FilterInput(char),
    /// Pasted text (bracketed paste): typed into the filter, ignored anywhere else, so a paste
    /// can never press `d` then `y`.
    Paste(String),
    FilterBackspace,
    FilterClear,
    FilterApply,
    FilterCancel,
    Confirm,
    Cancel,
    ToggleHelp,
    /// `S`: open or close the suppressed-addresses overlay.
    ToggleSuppressed,
    /// `x` in the overlay: lift the highlighted address's suppression (asks first).
    Unsuppress,
    /// Tab / Shift-Tab in the detail pane: pick the next / previous destination.
    NextDestination,
    PrevDestination,
    /// `D` in the detail pane: send the picked destination again (none picked: every dead one).
    Redeliver,
    /// `f`: open the form picker.
    PickForm,
    /// Enter in the form picker: show the highlighted form's messages (or every form's).
    ApplyForm,
    Quit,
    // the world
    Resize(u16, u16),
    /// Once a second, with the current time: refresh.
    Tick(i64),
    Loaded(Box<Loaded>),
    LoadFailed {
        req: u64,
        error: String,
    },
    DetailsLoaded {
        id: MessageId,
        result: Result<Box<Details>, String>,
    },
    Done(Report),
    /// What `Effect::Redeliver` queued again: each destination's number and what it is.
    Redelivered {
        id: MessageId,
        result: Result<Vec<(usize, &'static str)>, String>,
    },
    SuppressedLoaded(Result<Vec<crate::store::SuppressedAddress>, String>),
    /// `lifted`: false if the address was no longer suppressed.
    Unsuppressed {
        address: String,
        result: Result<bool, String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Load(LoadRequest),
    Run {
        verb: Verb,
        ids: Vec<MessageId>,
    },
    Details(MessageId),
    /// Send destination `number` of message `id` again, or every dead one (`UseCases::redeliver`).
    Redeliver {
        id: MessageId,
        number: Option<usize>,
    },
    /// Read every suppressed address (`UseCases::suppressed`).
    LoadSuppressed,
    /// Lift one address's suppression (`UseCases::unsuppress`).
    Unsuppress(String),
    Quit,
}
