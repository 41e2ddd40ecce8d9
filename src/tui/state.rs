//! Everything the dashboard shows, as plain data. The view is a pure function of [`State`];
//! `update` is the only thing that changes it.

use std::collections::BTreeSet;

use crate::actions::Details;
use crate::domain::{MessageId, Status};
use crate::forms::{Catalog, Form};
use crate::store::{MessageSummary, SuppressedAddress};

use super::action::Verb;

/// The tabs, one per status a moderator works with. (Spam has a status but no tab until a bot
/// filter puts messages there.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tab {
    Pending,
    Verified,
    Released,
    Trash,
    /// Caught by a bot filter.
    Spam,
}

impl Tab {
    pub const ALL: [Tab; 5] = [Tab::Pending, Tab::Verified, Tab::Released, Tab::Trash, Tab::Spam];

    pub fn status(self) -> Status {
        match self {
            Tab::Pending => Status::Pending,
            Tab::Verified => Status::Verified,
            Tab::Released => Status::Released,
            Tab::Trash => Status::Deleted,
            Tab::Spam => Status::Spam,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn next(self) -> Tab {
        Tab::ALL[(self.index() + 1) % Tab::ALL.len()]
    }

    pub fn prev(self) -> Tab {
        Tab::ALL[(self.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
    }
}

/// What keys mean right now (the keymap's input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Filter,
    Detail,
    Confirm,
    Help,
    /// The suppressed-addresses overlay (`S`).
    Suppressed,
    /// The form picker (`f`).
    FormPicker,
}

/// The one confirm dialog: destructive verbs and verbs on several messages wait here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    pub verb: Verb,
    pub ids: Vec<MessageId>,
    /// Chosen messages the verb cannot apply to (left alone).
    pub skipped: usize,
    /// Set from the suppressed-addresses overlay: the question is "lift the suppression of this
    /// address?" instead (`verb`, `ids` and `skipped` are unused).
    pub unsuppress: Option<String>,
}

/// The suppressed-addresses overlay (`S`).
#[derive(Clone, Debug, Default)]
pub struct SuppressedList {
    /// None until loaded.
    pub rows: Option<Vec<SuppressedAddress>>,
    pub error: Option<String>,
    /// The highlighted address (`x` lifts its suppression).
    pub cursor: usize,
}

impl SuppressedList {
    pub fn current(&self) -> Option<&SuppressedAddress> {
        self.rows.as_ref()?.get(self.cursor)
    }
}

#[derive(Clone, Debug)]
pub struct DetailPane {
    pub id: MessageId,
    /// None until loaded.
    pub details: Option<Details>,
    pub error: Option<String>,
    /// First line of the scrolled content shown.
    pub scroll: usize,
    /// The destination `D` sends again (an index into `details.outbox`); None: every dead one.
    pub destination: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Info,
    Success,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    pub text: String,
    pub tone: Tone,
}

/// Rows above and below the table: tab bar, column titles, status line, key hints.
const CHROME_ROWS: u16 = 4;

pub struct State {
    /// Who the audit trail records for this session's actions.
    pub actor: String,
    /// The time ages are computed from; set by ticks, fixed in tests.
    pub now: i64,
    pub width: u16,
    pub height: u16,
    pub tab: Tab,
    /// Messages per status, from the last successful read.
    pub counts: Vec<(Status, i64)>,
    /// The loaded rows of the current tab and filter, newest first, from the top of the list.
    pub rows: Vec<MessageSummary>,
    /// The last page read was full: there may be more rows below.
    pub more: bool,
    /// Rows for this tab and filter have arrived at least once.
    pub loaded: bool,
    pub cursor: usize,
    /// First row shown.
    pub offset: usize,
    pub selected: BTreeSet<MessageId>,
    /// The applied filter.
    pub filter: Option<String>,
    /// The site's forms, in configuration order (learnt when the dashboard starts; empty in
    /// tests that need none, which then look like a one-form site).
    pub forms: Vec<Form>,
    /// The form whose messages are shown (its slug); None: every form's.
    pub form: Option<String>,
    /// The form picker (`f`), open when Some: the highlighted row, 0 being "All forms" and
    /// `i + 1` the form `forms[i]`.
    pub form_picker: Option<usize>,
    /// The filter being typed (filter-input mode when Some).
    pub filter_input: Option<String>,
    pub detail: Option<DetailPane>,
    pub confirm: Option<Confirm>,
    pub help: bool,
    pub suppressed: Option<SuppressedList>,
    pub status: Option<StatusLine>,
    /// The last read failed: show the banner until one succeeds.
    pub db_down: bool,
    /// A viewer (an SSH moderator with `role = "viewer"`) sees everything and changes nothing:
    /// every verb is refused before it asks for confirmation.
    pub viewer: bool,
    pub(super) next_req: u64,
    /// The load whose answer is awaited; answers to older ones are dropped.
    pub(super) in_flight: Option<u64>,
}

impl State {
    pub fn new(actor: impl Into<String>, now: i64, width: u16, height: u16) -> State {
        State {
            actor: actor.into(),
            now,
            width,
            height,
            tab: Tab::Pending,
            counts: Vec::new(),
            rows: Vec::new(),
            more: false,
            loaded: false,
            cursor: 0,
            offset: 0,
            selected: BTreeSet::new(),
            filter: None,
            forms: Vec::new(),
            form: None,
            form_picker: None,
            filter_input: None,
            detail: None,
            confirm: None,
            help: false,
            suppressed: None,
            status: None,
            db_down: false,
            viewer: false,
            next_req: 0,
            in_flight: None,
        }
    }

    pub fn mode(&self) -> Mode {
        if self.confirm.is_some() {
            Mode::Confirm
        } else if self.help {
            Mode::Help
        } else if self.suppressed.is_some() {
            Mode::Suppressed
        } else if self.form_picker.is_some() {
            Mode::FormPicker
        } else if self.filter_input.is_some() {
            Mode::Filter
        } else if self.detail.is_some() {
            Mode::Detail
        } else {
            Mode::Normal
        }
    }

    /// Learns the site's forms (`UseCases::forms`), in configuration order.
    pub fn learn_forms(&mut self, catalog: &Catalog) {
        self.forms = catalog.iter().map(|e| e.form.clone()).collect();
    }

    /// Whether the site has more than one form: the table then has a Form column, `f` picks one.
    pub fn several_forms(&self) -> bool {
        self.forms.len() > 1
    }

    /// The form a message was posted to, when it is still configured.
    pub fn form_of(&self, slug: &str) -> Option<&Form> {
        self.forms.iter().find(|f| f.slug == slug)
    }

    /// A form's title, or its slug when it is no longer configured (unsafe: config or database
    /// text; the view makes it safe).
    pub fn form_title<'a>(&'a self, slug: &'a str) -> &'a str {
        self.form_of(slug).map_or(slug, |f| f.title.as_str())
    }

    pub fn count(&self, status: Status) -> i64 {
        self.counts
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }

    /// Rows of the screen the table (or the detail pane) gets.
    pub fn body_height(&self) -> usize {
        let banner = u16::from(self.db_down);
        self.height.saturating_sub(CHROME_ROWS + banner) as usize
    }

    /// Table rows visible under the column titles.
    pub fn visible_rows(&self) -> usize {
        self.body_height().saturating_sub(1).max(1)
    }

    pub fn current(&self) -> Option<&MessageSummary> {
        self.rows.get(self.cursor)
    }

    /// The first row shown so that the cursor is visible, keeping `offset` where it can: the
    /// view uses this too, so it never depends on `update` having run after a resize.
    pub fn clamped_offset(&self) -> usize {
        let visible = self.visible_rows();
        let max_offset = self.rows.len().saturating_sub(visible);
        let mut offset = self.offset.min(max_offset);
        if self.cursor < offset {
            offset = self.cursor;
        } else if self.cursor >= offset + visible {
            offset = self.cursor + 1 - visible;
        }
        offset
    }
}
