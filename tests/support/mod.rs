pub mod app;
pub mod pg;
pub mod smtp;
pub mod store;
pub mod webhook;
