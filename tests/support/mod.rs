pub mod app;
pub mod pg;
pub mod serve;
pub mod smtp;
pub mod store;
pub mod webhook;
