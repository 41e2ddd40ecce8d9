//! The benchmark's reference (benches/run.sh): the least a contact-form endpoint can do. One axum
//! handler parses the same form as `POST /contact` (name, email, message, optional subject) and,
//! depending on `REF_DATABASE_URL`, stores it with ONE autocommitted INSERT and answers `303`:
//!
//! - `none`: no database at all (the cost of HTTP and form parsing alone);
//! - `sqlite://FILE`: SQLite in WAL mode with `synchronous=NORMAL`, one writer connection;
//! - `postgres://…`: PostgreSQL, a pool of 10 connections (as formgate's PostgreSQL store).
//!
//! No validation, no outbox, no audit, no templates: formgate's figures are read as a ratio to
//! this one, measured in the same run on the same machine.
//!
//! `POST /hook` is the webhook receiver of the webhook figure: it reads the body and answers `200`,
//! the least a receiver can do; formgate delivers into it and `wrk` posts the same body to it.
//!
//! `REF_LISTEN` (default `127.0.0.1:18090`) is the address; it prints `listening` once bound.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Router, routing::post};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

#[derive(Deserialize)]
struct ContactForm {
    name: String,
    email: String,
    message: String,
    subject: Option<String>,
}

#[derive(Clone)]
enum Db {
    None,
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS ref_messages (
    id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, subject TEXT, body TEXT NOT NULL,
    created_at BIGINT NOT NULL)";

async fn open(url: &str) -> anyhow::Result<Db> {
    if url == "none" {
        return Ok(Db::None);
    }
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        // SQLite has one writer at a time; a single connection avoids lock contention between them.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        sqlx::query(&SCHEMA.replace("BIGSERIAL", "INTEGER"))
            .execute(&pool)
            .await?;
        return Ok(Db::Sqlite(pool));
    }
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect_with(PgConnectOptions::from_str(url)?)
        .await?;
    sqlx::query(SCHEMA).execute(&pool).await?;
    Ok(Db::Postgres(pool))
}

async fn submit(State(db): State<Db>, Form(f): Form<ContactForm>) -> Response {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let stored = match &db {
        Db::None => Ok(()),
        Db::Sqlite(pool) => {
            sqlx::query("INSERT INTO ref_messages (name, email, subject, body, created_at) VALUES (?, ?, ?, ?, ?)")
                .bind(&f.name)
                .bind(&f.email)
                .bind(&f.subject)
                .bind(&f.message)
                .bind(now)
                .execute(pool)
                .await
                .map(drop)
        }
        Db::Postgres(pool) => {
            sqlx::query("INSERT INTO ref_messages (name, email, subject, body, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&f.name)
                .bind(&f.email)
                .bind(&f.subject)
                .bind(&f.message)
                .bind(now)
                .execute(pool)
                .await
                .map(drop)
        }
    };
    match stored {
        Ok(()) => Redirect::to("/contact/sent").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// A webhook receiver that takes any body.
async fn hook(_body: axum::body::Bytes) -> StatusCode {
    StatusCode::OK
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("REF_DATABASE_URL").unwrap_or_else(|_| "none".into());
    let listen = std::env::var("REF_LISTEN").unwrap_or_else(|_| "127.0.0.1:18090".into());
    let db = open(&url).await?;
    let app = Router::new()
        .route("/contact", post(submit))
        .route("/hook", post(hook))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
