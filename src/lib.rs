//! formgate: a self-hosted gate for website contact forms. See README.md for the tour.
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod domain;
pub mod store;
pub mod token;
pub mod mail;
pub mod templates;
pub mod actions;
pub mod web;
pub mod app;
pub mod cli;
