//! `formgate tui`: the moderators' dashboard.
//!
//! ```text
//! key ──keymap──▶ Action ──update──▶ App (+ Effect) ──effects (tokio)──▶ Action ─▶ …
//!                                     └──view (pure) ──▶ terminal
//! ```
//!
//! `state` is plain data, `keymap` and `update` are pure and synchronous, `view/` draws (one file
//! per panel), `safe` keeps visitor text from talking to the terminal, `text` holds every string a
//! moderator reads.

pub mod action;
pub mod keymap;
pub mod safe;
pub mod state;
pub mod text;
pub mod update;
pub mod view;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
