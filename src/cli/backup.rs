//! `formgate backup PATH`: a checked online copy of the SQLite database; on PostgreSQL, the
//! `pg_dump` command that does the same.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::store::{BackupSummary, sqlite_backup};

/// Exit 0: the copy is written and passed `integrity_check`; 1: the copy failed or is damaged;
/// 2: the database is not SQLite (the `pg_dump` line is printed instead).
pub async fn backup(config: &Config, target: &Path) -> ExitCode {
    if !config.database_url.starts_with("sqlite:") {
        eprintln!("formgate: backup copies SQLite databases; for PostgreSQL, take a consistent dump with pg_dump:");
        eprintln!("{}", pg_dump_command(&config.database_url, target));
        eprintln!("  (give pg_dump the password in ~/.pgpass or PGPASSWORD, not on the command line)");
        return ExitCode::from(2);
    }
    match sqlite_backup(&config.database_url, target).await {
        Ok(summary) if summary.intact() => {
            print!("{}", report(target, &summary));
            ExitCode::SUCCESS
        }
        Ok(summary) => {
            print!("{}", report(target, &summary));
            eprintln!(
                "formgate: the copy at {} failed integrity_check, so the database itself may be damaged; do not rely on this copy (run `sqlite3 DB 'PRAGMA integrity_check'` on the database)",
                target.display()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("formgate: backup failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report(target: &Path, s: &BackupSummary) -> String {
    let states: Vec<String> = s.outbox.iter().map(|(state, n)| format!("{n} {state}")).collect();
    let integrity = if s.intact() {
        "ok".to_string()
    } else {
        s.problems.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
    };
    format!(
        "backup written to {} (mode 0600)\n  size           {} ({} bytes)\n  integrity      {integrity}\n  messages       {}\n  outbox rows    {}{}\n",
        target.display(),
        human_size(s.bytes),
        s.bytes,
        s.messages,
        s.outbox_rows(),
        if states.is_empty() {
            String::new()
        } else {
            format!(" ({})", states.join(", "))
        },
    )
}

#[allow(clippy::cast_precision_loss)] // a size shown to one decimal
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    let mut size = bytes as f64;
    if size < 1000.0 {
        return format!("{bytes} B");
    }
    let mut unit = "B";
    for u in UNITS {
        size /= 1000.0;
        unit = u;
        if size < 1000.0 {
            break;
        }
    }
    format!("{size:.1} {unit}")
}

/// The `pg_dump` line for `database_url`, its password left out (pg_dump asks, or reads
/// ~/.pgpass / PGPASSWORD) so that it never lands in a shell history or a log.
fn pg_dump_command(database_url: &str, target: &Path) -> String {
    let url = match url::Url::parse(database_url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => crate::config::redact_url(database_url),
    };
    format!(
        "  pg_dump --format=custom --file={} {}",
        shell_quote(&target.display().to_string()),
        shell_quote(&url)
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pg_dump_line_never_carries_the_password() {
        let line = pg_dump_command(
            "postgres://formgate:s3cret@db.example.org:5432/formgate",
            Path::new("/srv/backup/it's.dump"),
        );
        assert_eq!(
            line,
            r"  pg_dump --format=custom --file='/srv/backup/it'\''s.dump' 'postgres://formgate@db.example.org:5432/formgate'"
        );
    }

    #[test]
    fn sizes_read_like_ls_h() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_345_536), "1.3 MB");
        assert_eq!(human_size(2_000_000_000), "2.0 GB");
    }
}
