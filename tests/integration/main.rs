//! Integration tests: the real app over real HTTP, a real SQLite file or PostgreSQL database, a real
//! SMTP listener.
//! One binary (faster to build on small machines), one module per concern.

#[path = "../support/mod.rs"]
mod support;

mod abuse;
mod cli;
mod contact;
mod edge;
mod intake;
mod outbox;
mod scale;
mod store;
mod tui;
mod verify;
