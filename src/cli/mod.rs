//! The command line: `formgate serve`, `formgate migrate`, `formgate check-config`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{Application, shutdown_signal};
use crate::config::{Config, MailTarget};

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
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    Config::load(cli.config.as_deref(), &|k| std::env::var(k).ok()).map_err(|e| e.to_string())
}

pub fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("FORMGATE_LOG").unwrap_or_else(|_| "info,sqlx=warn".into());
    use std::io::IsTerminal;
    // Logs go to stderr (stdout carries command output); colour only on a terminal.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("formgate: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("formgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve(&config).await,
            Command::Migrate => {
                crate::store::connect(&config.database_url).await?;
                println!("database {} is up to date", config.database_url);
                Ok(())
            }
            Command::CheckConfig => {
                println!("{config:#?}");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("formgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    // Say where everything is: a first run should need no guessing.
    println!("formgate is listening on http://{addr}  (contact form at http://{addr}/)");
    println!("  links in mails point to  {}", app.public_url);
    println!("  database                 {}", config.database_url);
    match &config.mail {
        MailTarget::Dir(dir) => println!(
            "  mail                     no smtp_url set: written as .eml files to {} (links are logged too)",
            dir.display()
        ),
        MailTarget::Smtp(url) => println!("  mail                     SMTP {url:?}"),
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
    match &config.staff_inbox {
        Some(m) => println!("  released messages go to  {m}"),
        None => println!("  released messages go to  (no staff_inbox set)"),
    }
    app.run(shutdown_signal()).await
}
