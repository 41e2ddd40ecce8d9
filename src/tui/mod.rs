//! `formgate tui`: the moderators' dashboard.
//!
//! `safe` keeps visitor text from talking to the terminal.

pub mod safe;
