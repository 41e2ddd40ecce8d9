//! Integration tests: the real app over real HTTP, a real SQLite file or PostgreSQL database, a real
//! SMTP listener.
//! One binary (faster to build on small machines), one module per concern.

// A panic in a test (or its helpers) is a failed test: unwrap and expect are fine here, as are
// casts of small test counts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss
)]

#[path = "../support/mod.rs"]
mod support;

mod abuse;
mod backup;
mod browser;
mod cli;
mod contact;
mod copy;
mod dkim;
mod doctor;
mod edge;
mod forms;
mod health;
mod intake;
mod logs;
mod metrics;
mod outbox;
mod scale;
mod service;
mod ssh;
mod store;
mod tui;
mod verify;
mod webhooks;
