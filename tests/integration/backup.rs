//! `formgate backup`: the real binary copying a SQLite file that a running `serve` writes to.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::Connection;

use crate::support::app::{Options, TestApp};

fn backup(database_url: &str, target: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_formgate"))
        .arg("backup")
        .arg(target)
        .env("FORMGATE_DATABASE_URL", database_url)
        .env("FORMGATE_LOG", "warn")
        .output()
        .expect("formgate runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_is_intact_and_holds_every_acknowledged_message() {
    let app = Arc::new(
        TestApp::spawn_with(Options {
            smtp: false,
            ..Options::default()
        })
        .await,
    );
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (app, acknowledged, stop) = (app.clone(), acknowledged.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (id, _) = app.submit_json(&format!("w{w}-{n}@example.org")).await;
                    acknowledged.lock().unwrap().push(id.0);
                    n += 1;
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let target = app.dir.path().join("backup.db");
    let before: HashSet<i64> = acknowledged.lock().unwrap().iter().copied().collect();
    let url = app.config.database_url.clone();
    let out = tokio::task::spawn_blocking({
        let target = target.clone();
        move || backup(&url, &target)
    })
    .await
    .unwrap();
    let during = acknowledged.lock().unwrap().len() - before.len();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(during > 0, "posts were acknowledged while the backup ran");
    let report = text(&out.stdout);
    assert!(report.contains("integrity      ok"), "{report}");
    assert!(report.contains("messages"), "{report}");
    assert!(report.contains("outbox rows"), "{report}");
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600,
        "a backup holds every visitor's message: private"
    );

    let mut copy = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", target.display()))
        .await
        .unwrap();
    let check: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut copy)
        .await
        .unwrap();
    assert_eq!(check, ["ok"]);
    let stored: HashSet<i64> = sqlx::query_scalar("SELECT id FROM messages")
        .fetch_all(&mut copy)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let missing: Vec<&i64> = before.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "acknowledged before the backup, missing from it: {missing:?}"
    );
    let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&mut copy)
        .await
        .unwrap();
    assert!(
        report.contains(&format!("messages       {}\n", stored.len())),
        "{report}"
    );
    assert!(report.contains(&format!("outbox rows    {outbox}")), "{report}");
}

#[tokio::test]
async fn backup_never_overwrites_an_existing_file() {
    let app = TestApp::spawn().await;
    let target = app.dir.path().join("yesterday.db");
    std::fs::write(&target, "yesterday's backup").unwrap();
    let url = app.config.database_url.clone();
    let out = tokio::task::spawn_blocking({
        let target = target.clone();
        move || backup(&url, &target)
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot create"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "yesterday's backup");
}

#[tokio::test]
async fn backup_on_postgresql_prints_the_pg_dump_command_without_the_password() {
    let target = Path::new("/srv/backup/formgate.dump");
    let out = backup("postgres://formgate:s3cret-pw@db.example.org/formgate", target);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "pg_dump --format=custom --file='/srv/backup/formgate.dump' 'postgres://formgate@db.example.org/formgate'"
        ),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert!(text(&out.stdout).is_empty());
    assert!(!target.exists());
}
