//! The command line: `serve`, `tui`, the scriptable verbs (`list`, `show`, `release`, …),
//! `migrate`, `check-config`, `doctor`, `backup` and `dkim-record`. Exit codes: 0 success; 1 an
//! action failed (one line on stderr per failure); 2 bad usage or configuration.

mod backup;
mod dkim;
mod doctor;
mod forms;
mod output;
mod probe;
pub mod verbs;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{Server, Services, shutdown_signal};
use crate::config::{Config, LogFormat, MailTarget};
use crate::domain::{MessageId, Status};

#[derive(Debug, Parser)]
#[command(
    name = "formgate",
    version,
    about = "A self-hosted gate for website contact forms: verify the sender, then deliver."
)]
pub struct Cli {
    /// Configuration file (default: ./formgate.toml when it exists). FORMGATE_<KEY> variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web listener and the outbox worker.
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Check the configuration and print it (secrets redacted).
    CheckConfig,
    /// Ask the running `serve` on `listen` whether it is alive (exit 0) or not (exit 1): for a
    /// container's health check, where no curl is installed.
    Probe {
        /// The path asked for.
        #[arg(default_value = "/livez")]
        path: String,
    },
    /// The moderators' dashboard.
    Tui {
        /// Name recorded in the audit trail (default: your OS user name).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// List messages, newest first.
    List {
        /// Only messages in this status: pending, verified, released, deleted or spam.
        #[arg(long)]
        status: Option<Status>,
        /// Only messages whose name, email, subject or body contains this text.
        #[arg(long)]
        search: Option<String>,
        /// Only messages posted to this form (its slug; `formgate forms` lists them).
        #[arg(long, value_name = "SLUG")]
        form: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Machine-readable output (see the README for the fields).
        #[arg(long)]
        json: bool,
    },
    /// Show one message: the text, the consent record, the audit trail and its numbered destinations.
    Show {
        id: MessageId,
        #[arg(long)]
        json: bool,
    },
    /// Send a message's delivery again (same Message-ID or webhook-id, same content): destination
    /// N as `show` numbers them, sent or dead; without --to, every dead one (exit 1 if none is).
    Redeliver {
        id: MessageId,
        /// The destination's number in `formgate show ID`.
        #[arg(long = "to", value_name = "N")]
        to: Option<usize>,
        /// Name recorded in the audit trail (default: your OS user name).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// Deliver verified messages to the staff inbox.
    Release(Targets),
    /// Send pending messages' visitors a new verification mail (older links stop working).
    Resend(Targets),
    /// Move messages to the trash.
    Delete(Targets),
    /// Take messages out of the trash, back to where they were.
    Restore(Targets),
    /// Move messages a bot filter caught back to pending; their verification mail goes out
    /// (within the mail caps, never to a suppressed address).
    NotSpam(Targets),
    /// List the addresses that asked for no more mail ("I didn't send this").
    Suppressed {
        #[arg(long)]
        json: bool,
    },
    /// Mail an address that asked for no more mail again (lift its suppression).
    Unsuppress {
        email: String,
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// Empty the trash for good.
    Purge {
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
    /// Write messages (with their full text) as CSV or JSON to standard output.
    Export {
        #[arg(long, value_enum, default_value_t = verbs::ExportFormat::Csv)]
        format: verbs::ExportFormat,
        #[arg(long)]
        status: Option<Status>,
        /// Only messages posted to this form; a declared form's CSV then has one column per field.
        #[arg(long, value_name = "SLUG")]
        form: Option<String>,
    },
    /// List the site's forms: their addresses, fields and where their messages go.
    Forms {
        #[command(subcommand)]
        command: Option<FormsCommand>,
    },
    /// Check the configuration, database, keys, SMTP, public_url and outbox, sending no mail;
    /// one line per check, exit 1 if any failed.
    Doctor,
    /// Copy the SQLite database to a new file while `serve` runs, check the copy and summarise
    /// it (on PostgreSQL: print the pg_dump command to use instead; exit 2).
    Backup {
        /// The new file (an existing one is never overwritten).
        path: PathBuf,
    },
    /// Print the SSH dashboard's host key fingerprint (SHA-256, as ssh prints it), to check the
    /// first connection against.
    SshFingerprint,
    /// Print the DNS TXT record that publishes the DKIM key (see DKIM in the README).
    DkimRecord {
        /// First write a new Ed25519 key to FILE (mode 0600; an existing file is never overwritten).
        #[arg(long, value_name = "FILE")]
        generate: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FormsCommand {
    /// Print a ready-to-paste HTML form that posts to this form, for a page of your own site.
    Snippet {
        /// The form's slug.
        slug: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct Targets {
    /// Message ids.
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<MessageId>,
    /// Name recorded in the audit trail (default: your OS user name).
    #[arg(long = "as", value_name = "NAME")]
    pub actor: Option<String>,
}

/// Runs `command` if it is one of the moderator's verbs (None if it is not), writing to `io`.
/// `act_as` turns the command's `--as` into the actor the audit trail records: locally `--as` or
/// the OS user; over SSH the authenticated moderator, and `--as` is refused (an error there
/// becomes a usage error, exit 2). Shared by the local CLI and `ssh … VERB`, so both print the
/// same and exit the same.
pub async fn run_verb(
    command: Command,
    config: &Config,
    actions: &crate::actions::UseCases,
    io: &mut verbs::Console<'_>,
    act_as: &(dyn Fn(Option<String>) -> Result<String, String> + Sync),
) -> anyhow::Result<Option<verbs::Exit>> {
    let who = |given: Option<String>, io: &mut verbs::Console<'_>| match act_as(given) {
        Ok(actor) => Ok(actor),
        Err(why) => {
            let _ = writeln!(io.err, "formgate: {why}");
            Err(2)
        }
    };
    let targets = |verb, t: Targets| (verb, t.ids, t.actor);
    let (verb, ids, given) = match command {
        Command::List {
            status,
            search,
            form,
            limit,
            json,
        } => {
            if let Err(code) = forms::known(config, form.as_deref(), io.err) {
                return Ok(Some(code));
            }
            verbs::list(actions, io, status, search, form, limit, json).await?;
            return Ok(Some(verbs::DONE));
        }
        Command::Show { id, json } => {
            verbs::show(actions, io, id, json).await?;
            return Ok(Some(verbs::DONE));
        }
        Command::Suppressed { json } => {
            verbs::suppressed(actions, io, json).await?;
            return Ok(Some(verbs::DONE));
        }
        Command::Export { format, status, form } => {
            if let Err(code) = forms::known(config, form.as_deref(), io.err) {
                return Ok(Some(code));
            }
            verbs::export(actions, io, format, status, form).await?;
            return Ok(Some(verbs::DONE));
        }
        Command::Redeliver { id, to, actor: a } => {
            let Ok(actor) = who(a, io) else { return Ok(Some(2)) };
            return Ok(Some(verbs::redeliver(actions, io, id, to, &actor).await?));
        }
        Command::Unsuppress { email, actor: a } => {
            let Ok(actor) = who(a, io) else { return Ok(Some(2)) };
            return Ok(Some(verbs::unsuppress(actions, io, &email, &actor).await?));
        }
        Command::Purge { actor: a } => {
            let Ok(actor) = who(a, io) else { return Ok(Some(2)) };
            verbs::purge(actions, io, &actor).await?;
            return Ok(Some(verbs::DONE));
        }
        Command::Release(t) => targets(verbs::Verb::Release, t),
        Command::Resend(t) => targets(verbs::Verb::Resend, t),
        Command::Delete(t) => targets(verbs::Verb::Delete, t),
        Command::Restore(t) => targets(verbs::Verb::Restore, t),
        Command::NotSpam(t) => targets(verbs::Verb::NotSpam, t),
        _ => return Ok(None),
    };
    let Ok(actor) = who(given, io) else { return Ok(Some(2)) };
    Ok(Some(verbs::each(actions, io, verb, &ids, &actor).await?))
}

/// Who is acting: `--as NAME`, else the OS user.
fn actor(given: Option<String>) -> String {
    given
        .filter(|a| !a.trim().is_empty())
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Where the configuration comes from, as the doctor's first line says it.
fn config_source(cli: &Cli) -> String {
    match &cli.config {
        Some(path) => format!("{} and FORMGATE_ variables", path.display()),
        None if std::path::Path::new("formgate.toml").exists() => "formgate.toml and FORMGATE_ variables".into(),
        None => "built-in defaults and FORMGATE_ variables (no formgate.toml here)".into(),
    }
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    Config::load(cli.config.as_deref(), &|k| std::env::var(k).ok()).map_err(|e| e.to_string())
}

/// Logs go to stderr (stdout carries command output): as text, coloured only on a terminal, or
/// as one JSON object per line with the spans each event happened in (`log_format`).
pub fn init_tracing(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("FORMGATE_LOG").unwrap_or_else(|_| "info,sqlx=warn".into());
    use std::io::IsTerminal;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
        // `flatten_event`: the event's fields (message included) at the top level, where a
        // collector's query expects them; the spans as a list, outermost first.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = || match tokio::runtime::Runtime::new() {
        Ok(r) => Ok(r),
        Err(e) => {
            eprintln!("formgate: cannot start the async runtime: {e}");
            Err(ExitCode::FAILURE)
        }
    };
    if let Command::Doctor = cli.command {
        // A configuration that does not load is the doctor's first finding, not a usage error.
        let loaded = Config::load(cli.config.as_deref(), &|k| std::env::var(k).ok());
        init_tracing(loaded.as_ref().map_or(LogFormat::Text, |c| c.log_format));
        let source = config_source(&cli);
        return match runtime() {
            Ok(rt) => rt.block_on(doctor::doctor(loaded, &source)),
            Err(code) => code,
        };
    }
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("formgate: {e}");
            return ExitCode::from(2);
        }
    };
    // The dashboard owns the screen: a log line written to stderr would be drawn over it.
    if !matches!(cli.command, Command::Tui { .. }) {
        init_tracing(config.log_format);
    }
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result: anyhow::Result<ExitCode> = runtime.block_on(async {
        let ok = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
        match cli.command {
            Command::Serve => ok(serve(&config).await),
            Command::Migrate => {
                crate::store::connect(&config.database_url).await?;
                println!(
                    "database {} is up to date",
                    crate::config::redact_url(&config.database_url)
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Probe { path } => Ok(probe::probe(config.listen, &path)),
            Command::CheckConfig => {
                // The DKIM key as `serve` would read it: a key that cannot sign fails the check.
                if let Some(dkim) = &config.dkim
                    && let Err(e) = crate::mail::DkimSigner::load(dkim, &config.dkim_selector)
                {
                    eprintln!("formgate: {e}");
                    return Ok(ExitCode::from(2));
                }
                // The webhooks' addresses, as `serve` checks them at start.
                let forms = config.forms();
                if let Err(e) = crate::webhook::send::check_addresses(forms.iter(), config.webhook_allow_private).await
                {
                    eprintln!("formgate: {e}");
                    return Ok(ExitCode::from(2));
                }
                println!("{config:#?}");
                Ok(ExitCode::SUCCESS)
            }
            Command::Tui { actor: a } => ok(crate::tui::run(Services::for_moderator(&config).await?, actor(a)).await),
            command @ (Command::List { .. }
            | Command::Show { .. }
            | Command::Redeliver { .. }
            | Command::Release(_)
            | Command::Resend(_)
            | Command::Delete(_)
            | Command::Restore(_)
            | Command::NotSpam(_)
            | Command::Suppressed { .. }
            | Command::Unsuppress { .. }
            | Command::Purge { .. }
            | Command::Export { .. }) => {
                use std::io::IsTerminal;
                let services = Services::for_moderator(&config).await?;
                let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
                let mut io = verbs::Console {
                    out: &mut out,
                    err: &mut err,
                    terminal: std::io::stdout().is_terminal(),
                };
                let local = |given: Option<String>| Ok(actor(given));
                let exit = run_verb(command, &config, &services.actions, &mut io, &local).await?;
                Ok(ExitCode::from(exit.unwrap_or(2)))
            }
            Command::Forms { command: None } => ok(forms::list(&config)),
            Command::Forms {
                command: Some(FormsCommand::Snippet { slug }),
            } => Ok(forms::snippet(&config, &slug)),
            // Handled above, before the configuration must load.
            Command::Doctor => Ok(ExitCode::SUCCESS),
            Command::Backup { path } => Ok(backup::backup(&config, &path).await),
            Command::DkimRecord { generate } => Ok(dkim::record(&config, generate.as_deref())),
            Command::SshFingerprint => {
                if !config.ssh_host_key_file.exists() {
                    eprintln!(
                        "formgate: no SSH host key at {} yet: serve makes it on its first start with ssh_listen set",
                        config.ssh_host_key_file.display()
                    );
                    return Ok(ExitCode::FAILURE);
                }
                let key = crate::ssh::host_key::load(&config.ssh_host_key_file)?;
                println!("{}", crate::ssh::host_key::fingerprint(&key));
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("formgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let app = Server::build(config).await?;
    let addr = app.local_addr();
    // Say where everything is: a first run should need no guessing.
    println!("formgate is listening on http://{addr}  (contact form at http://{addr}/)");
    println!("  links in mails point to  {}", app.public_url);
    if let Some(metrics) = app.metrics_addr() {
        println!("  metrics                  http://{metrics}/metrics");
    }
    if let (Some(ssh), Some((fingerprint, created))) = (app.ssh_addr(), &app.ssh_host_key) {
        let made = if *created { ", generated now" } else { "" };
        println!(
            "  ssh dashboard            ssh -p {} {}  (host key {fingerprint}{made}; {} moderator(s))",
            ssh.port(),
            ssh.ip(),
            config.moderators.len()
        );
    }
    println!(
        "  database                 {}",
        crate::config::redact_url(&config.database_url)
    );
    match &config.mail {
        MailTarget::Dir(dir) => println!(
            "  mail                     no smtp_url set: written as .eml files to {} (links are logged too)",
            dir.display()
        ),
        MailTarget::Smtp(url) => println!("  mail                     SMTP {url:?}"),
    }
    match &config.dkim {
        Some(dkim) => println!(
            "  DKIM                     signed as {}._domainkey.{} with {}",
            config.dkim_selector,
            dkim.domain,
            dkim.key_file.display()
        ),
        None => println!("  DKIM                     not signed (set dkim_domain and dkim_key_file; see the README)"),
    }
    match (&config.keys, &app.created_key_file) {
        (_, Some(path)) => println!(
            "  signing key              generated {} (mode 0600); keep it, or links in sent mails stop working",
            path.display()
        ),
        (crate::config::KeySource::File(path), None) => {
            println!("  signing key              {}", path.display())
        }
        (crate::config::KeySource::Inline(k), None) => {
            println!("  signing keys             {} from configuration", k.len())
        }
    }
    for form in app.forms().iter() {
        let mut inbox = if form.staff_inbox.is_empty() {
            "(no staff_inbox set)".to_string()
        } else {
            form.inboxes()
        };
        match form.webhooks.len() {
            0 => {}
            1 => inbox.push_str(" + 1 webhook"),
            n => inbox.push_str(&format!(" + {n} webhooks")),
        }
        let path = form.path(form.default);
        println!("  form {:<19} {}{path} → {inbox}", form.slug, app.public_url);
    }
    crate::systemd::notify("READY=1");
    app.run(shutdown_signal()).await
}
