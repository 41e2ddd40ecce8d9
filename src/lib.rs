//! formgate: a self-hosted gate for website contact forms. See README.md for the tour.
#![forbid(unsafe_code)]

pub mod actions;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod forms;
pub mod intake;
pub mod mail;
pub mod metrics;
pub mod ssh;
pub mod store;
pub mod systemd;
pub mod templates;
pub mod token;
pub mod tui;
pub mod web;
pub mod webhook;
