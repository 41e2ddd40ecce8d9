//! The non-interactive verbs: the same `actions` the dashboard calls, for scripts and cron jobs.

use std::io::Write;

use crate::actions::{Outcome, UseCases};
use crate::domain::{MessageId, Status};
use crate::store::ListQuery;

use super::output;

/// Where a verb writes: the process's stdout and stderr for the local CLI, buffers sent over the
/// channel for a verb run over SSH. `terminal`: `out` is a terminal (CSV then shows control
/// characters escaped).
pub struct Console<'a> {
    pub out: &'a mut (dyn Write + Send),
    pub err: &'a mut (dyn Write + Send),
    pub terminal: bool,
}

/// A verb's exit status: 0 done, 1 some of it failed, 2 a usage error.
pub type Exit = u8;
pub const DONE: Exit = 0;
pub const FAILED: Exit = 1;

pub use crate::actions::Verb;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

/// Runs a verb on every id (each independently: one failure does not stop the others), prints
/// one line per success on stdout and one per failure on stderr. Exit code 1 if any failed.
/// A resend or "not spam" whose mail was withheld (suppressed address, a cap) still succeeded:
/// the line says "…, but no mail: why" and the exit code stays 0.
pub async fn each(
    actions: &UseCases,
    io: &mut Console<'_>,
    verb: Verb,
    ids: &[MessageId],
    actor: &str,
) -> anyhow::Result<Exit> {
    let mut failed = false;
    for &id in ids {
        let outcome = actions.perform(verb, id, actor).await.map(|o| match o {
            Outcome::Released { mailed: true, to } => format!("released #{id}: queued for {to}"),
            Outcome::Released { mailed: false, .. } => {
                format!("released #{id} (no staff_inbox configured: marked released, not mailed)")
            }
            Outcome::Resent { no_mail: None } => format!("resent the verification of #{id}"),
            Outcome::Resent { no_mail: Some(why) } => format!("resend of #{id} recorded, but no mail: {why}"),
            Outcome::Deleted => format!("moved #{id} to the trash"),
            Outcome::Restored(s) => format!("restored #{id} to {s}"),
            Outcome::NotSpam { no_mail: None } => format!("#{id} is not spam: pending, verification mail queued"),
            Outcome::NotSpam { no_mail: Some(why) } => format!("#{id} is not spam: pending, but no mail: {why}"),
        });
        match outcome {
            Ok(line) => writeln!(io.out, "{line}")?,
            Err(e) => {
                failed = true;
                writeln!(io.err, "formgate: #{id}: {}", output::safe(&e.to_string()))?;
            }
        }
    }
    Ok(if failed { FAILED } else { DONE })
}

pub async fn list(
    actions: &UseCases,
    io: &mut Console<'_>,
    status: Option<Status>,
    search: Option<String>,
    form: Option<String>,
    limit: i64,
    json: bool,
) -> anyhow::Result<()> {
    let rows = actions
        .store()
        .list(&ListQuery {
            status,
            form,
            search,
            after: None,
            limit: limit.clamp(1, 10_000),
        })
        .await?;
    let out = &mut *io.out;
    if json {
        writeln!(out, "{}", output::json(&rows)?)?;
    } else {
        output::table(out, &rows, actions.now(), actions.forms().several())?;
    }
    Ok(())
}

pub async fn show(actions: &UseCases, io: &mut Console<'_>, id: MessageId, json: bool) -> anyhow::Result<()> {
    let details = actions.details(id).await?;
    let form = actions.forms().entry_of(&details.message.form);
    let out = &mut *io.out;
    if json {
        let mut value = serde_json::to_value(&details)?;
        value["message"] = output::message_json(&details.message, form)?;
        writeln!(out, "{}", output::json(&value)?)?;
    } else {
        output::details(out, &details, form)?;
    }
    Ok(())
}

/// `formgate redeliver ID [--to N]`: one line per destination queued again; exit 1 (one line on
/// stderr) when nothing was, for example when no delivery is dead or destination N is under way.
pub async fn redeliver(
    actions: &UseCases,
    io: &mut Console<'_>,
    id: MessageId,
    to: Option<usize>,
    actor: &str,
) -> anyhow::Result<Exit> {
    match actions.redeliver(id, to, actor).await {
        Ok(queued) => {
            for d in queued {
                writeln!(
                    io.out,
                    "#{id}: queued destination {} again ({} to {})",
                    d.number,
                    d.destination,
                    output::safe(&d.row.recipient)
                )?;
            }
            Ok(DONE)
        }
        Err(e) => {
            writeln!(io.err, "formgate: #{id}: {}", output::safe(&e.to_string()))?;
            Ok(FAILED)
        }
    }
}

/// `formgate suppressed [--json]`.
pub async fn suppressed(actions: &UseCases, io: &mut Console<'_>, json: bool) -> anyhow::Result<()> {
    let rows = actions.suppressed().await?;
    let out = &mut *io.out;
    if json {
        writeln!(out, "{}", output::json(&rows)?)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no suppressed addresses")?;
    }
    for r in rows {
        writeln!(
            out,
            "{}  since {}  {}",
            output::safe(&r.address),
            crate::clock::human_time(r.created_at),
            output::safe(&r.reason)
        )?;
    }
    Ok(())
}

/// `formgate unsuppress EMAIL`: exit 1 if the address was not suppressed.
pub async fn unsuppress(actions: &UseCases, io: &mut Console<'_>, email: &str, actor: &str) -> anyhow::Result<Exit> {
    if actions.unsuppress(email, actor).await? {
        writeln!(io.out, "{}: will be mailed again", output::safe(email))?;
        Ok(DONE)
    } else {
        writeln!(io.err, "formgate: {} was not suppressed", output::safe(email))?;
        Ok(FAILED)
    }
}

pub async fn purge(actions: &UseCases, io: &mut Console<'_>, actor: &str) -> anyhow::Result<()> {
    let purged = actions.purge_trash(actor).await?;
    writeln!(io.out, "purged {} message(s) from the trash", purged.trashed)?;
    Ok(())
}

/// Pages through every message (keyset pagination, so memory stays flat) with its full text.
/// JSON escapes terminal controls losslessly; CSV cannot, so CSV written to a terminal (rather
/// than a file or pipe) shows them escaped. CSV of one declared form (`--form`) has a column per
/// field; otherwise the fields are one JSON column (messages of several forms, or an open form's).
pub async fn export(
    actions: &UseCases,
    io: &mut Console<'_>,
    format: ExportFormat,
    status: Option<Status>,
    form: Option<String>,
) -> anyhow::Result<()> {
    let to_terminal = io.terminal;
    if to_terminal && matches!(format, ExportFormat::Csv) {
        writeln!(
            io.err,
            "formgate: standard output is (or, over SSH, may be) a terminal: control characters are shown escaped; redirect to a file, or use --format json, for the raw data"
        )?;
    }
    let mut out = std::io::BufWriter::new(&mut *io.out);
    let catalog = actions.forms().clone();
    let columns = form
        .as_deref()
        .and_then(|slug| catalog.get(slug))
        .and_then(|entry| crate::forms::present::export_columns(entry));
    let mut after = None;
    let mut first = true;
    match format {
        ExportFormat::Csv => output::csv_header(&mut out, columns.as_deref())?,
        ExportFormat::Json => write!(out, "[")?,
    }
    loop {
        let page = actions
            .store()
            .list(&ListQuery {
                status,
                form: form.clone(),
                search: None,
                after,
                limit: 500,
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.id));
        for row in &page {
            // The listing carries a preview; the export wants the whole message.
            let Some(m) = actions.store().message(row.id).await? else {
                continue;
            };
            match format {
                ExportFormat::Csv => output::csv_row(&mut out, &m, columns.as_deref(), to_terminal)?,
                ExportFormat::Json => {
                    let value = output::message_json(&m, catalog.entry_of(&m.form))?;
                    write!(out, "{}{}", if first { "\n" } else { ",\n" }, output::json(&value)?)?;
                }
            }
            first = false;
        }
    }
    if let ExportFormat::Json = format {
        writeln!(out, "{}]", if first { "" } else { "\n" })?;
    }
    out.flush()?;
    Ok(())
}
