//! The dashboard over SSH (`ssh_listen`): moderators who are who they say they are, with nothing
//! to install. Everything SSH lives here; the dashboard itself is `tui::session`, the verbs are
//! `cli::run_verb`, the same ones a local terminal runs.

use russh::keys::PublicKey;

/// What a moderator may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Reads and acts.
    Moderator,
    /// Reads everything, changes nothing.
    Viewer,
}

/// One `[[moderators]]` entry: the name the audit trail records, the keys that prove it.
#[derive(Clone, PartialEq)]
pub struct Moderator {
    pub name: String,
    pub keys: Vec<PublicKey>,
    pub role: Role,
}

impl Moderator {
    /// Reads everything, changes nothing.
    pub fn is_viewer(&self) -> bool {
        self.role == Role::Viewer
    }
}

impl std::fmt::Debug for Moderator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| k.fingerprint(russh::keys::HashAlg::Sha256).to_string())
            .collect();
        f.debug_struct("Moderator")
            .field("name", &self.name)
            .field("keys", &keys)
            .field("role", &self.role)
            .finish()
    }
}

mod channel;
pub mod host_key;
mod server;

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use server::{SESSIONS_PER_MODERATOR, SshServer};

use crate::actions::UseCases;
use crate::config::Config;

/// What a moderator reads over SSH outside the dashboard.
mod text {
    pub const NEEDS_A_TERMINAL: &str = "formgate: this is the moderators' dashboard, and it needs a terminal.\r\n\
        Connect with `ssh -t …` (or from a terminal), or run one verb: `ssh … list`, `ssh … show 12`.\r\n";
    pub const VERBS_ONLY: &str = "formgate: over SSH, run the dashboard (no command) or one of the verbs: \
        list, show, release, resend, delete, restore, not-spam, redeliver, suppressed, unsuppress, purge, export\n";
}

/// The SSH dashboard `config` asks for, bound and with its host key (made if missing), or None
/// when `ssh_listen` is unset. Returns the fingerprint to print, and whether the key is new.
pub async fn bind(
    config: &Config,
    actions: Arc<UseCases>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<(SshServer, String, bool)>> {
    let Some(addr) = config.ssh_listen else { return Ok(None) };
    if config.moderators.is_empty() {
        anyhow::bail!(
            "ssh_listen is set but no [[moderators]] are: nobody could log in (see SSH dashboard in the README)"
        );
    }
    let (key, created) = host_key::load_or_create(&config.ssh_host_key_file)?;
    let fingerprint = host_key::fingerprint(&key);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (config key `ssh_listen`)"))?;
    let shared = server::Shared {
        moderators: config.moderators.iter().cloned().map(Arc::new).collect(),
        actions,
        config: Arc::new(config.clone()),
        sessions: Arc::new(tokio::sync::Semaphore::new(config.ssh_max_sessions)),
        per_moderator: std::sync::Mutex::default(),
        failures: std::sync::Mutex::default(),
        stop,
    };
    Ok(Some((SshServer::new(listener, key, shared), fingerprint, created)))
}
