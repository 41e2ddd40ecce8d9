//! Assembles formgate from its configuration: store, keys, templates, actions, outbox worker and
//! web listener. `build` binds the port (tests bind port 0 and ask which one they got); `run`
//! serves until the shutdown future resolves, then stops cleanly: no new connections, requests in
//! flight finished, mails being sent finished, outbox leases handed back.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::mail::handover::WorkerBell;

use crate::actions::{Settings, UseCases};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, MailTarget};
use crate::forms::Catalog;
use crate::mail::{Composer, DkimSigner, OutboxConfig, OutboxWorker, Transport};
use crate::store::{self, SharedStore};
use crate::templates::Templates;
use crate::web::{self, WebState};

/// Webhook deliveries in flight at once: each waits on a receiver far away (up to its timeout),
/// so more of them than SMTP connections, which answer in milliseconds.
const WEBHOOK_LANES: usize = 16;

pub struct Server {
    listener: TcpListener,
    /// Where `listener` is bound (port 0 in tests: the port the OS chose).
    addr: SocketAddr,
    state: WebState,
    worker: OutboxWorker,
    /// Delivers webhooks, beside the mail worker.
    webhook_worker: OutboxWorker,
    store: SharedStore,
    header_timeout: std::time::Duration,
    shutdown_grace: Option<std::time::Duration>,
    /// `metrics_listen`'s listener and what its scrapes read, when set.
    metrics: Option<(TcpListener, Arc<crate::metrics::endpoint::Gauges>)>,
    /// The SSH dashboard (`ssh_listen`), when set.
    ssh: Option<crate::ssh::SshServer>,
    /// The SSH host key's fingerprint, and whether this start generated the key.
    pub ssh_host_key: Option<(String, bool)>,
    /// Set when shutdown begins; everything started here watches it.
    stop: (watch::Sender<bool>, watch::Receiver<bool>),
    /// Set when `build` generated a new signing key file.
    pub created_key_file: Option<PathBuf>,
    /// The base of links in mails.
    pub public_url: String,
}

impl Server {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with(
            config,
            Arc::new(SystemClock),
            OutboxConfig {
                lanes: config.smtp_connections,
                ..OutboxConfig::default()
            },
        )
        .await
    }

    /// Like `build`, with the clock and outbox tuning chosen by the caller (tests).
    pub async fn build_with(config: &Config, clock: SharedClock, outbox: OutboxConfig) -> anyhow::Result<Self> {
        // A DKIM key that cannot sign stops the start, before the port is taken.
        let dkim = config
            .dkim
            .as_ref()
            .map(|d| DkimSigner::load(d, &config.dkim_selector))
            .transpose()?
            .map(Arc::new);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (config key `listen`)", config.listen))?;
        let bound = listener.local_addr().context("reading the bound address")?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (config key `metrics_listen`)"))?,
            ),
            None => None,
        };
        let services = Services::open(config, clock.clone(), &format!("http://{bound}")).await?;
        let state = WebState {
            actions: services.actions.clone(),
            templates: services.templates,
            site_name: config.site_name.as_str().into(),
            edge: Arc::new(web::edge::Edge::new(
                config,
                services.actions.forms(),
                &services.public_url,
            )),
            stopping: Arc::default(),
        };
        let metrics = metrics_listener.map(|l| {
            (
                l,
                crate::metrics::endpoint::Gauges::new(services.store.clone(), clock.clone()),
            )
        });
        let stop = watch::channel(false);
        let (ssh, ssh_host_key) = match crate::ssh::bind(config, services.actions.clone(), stop.1.clone()).await? {
            Some((server, fingerprint, created)) => (Some(server), Some((fingerprint, created))),
            None => (None, None),
        };
        let transport = Transport::new(&config.mail, config.smtp_timeout, dkim);
        let mut worker = OutboxWorker::new(
            services.store.clone(),
            transport,
            services.actions.verification_mails(),
            clock.clone(),
            outbox.clone(),
            services.outbox_wake,
        );
        if let Some(handover) = worker.handover() {
            services.actions.hand_mails_to(handover);
        }
        let sender = crate::webhook::WebhookSender::new(
            services.actions.forms().clone(),
            crate::webhook::WebhookSettings {
                lifetime: crate::clock::seconds(config.webhook_lifetime),
                allow_private: config.webhook_allow_private,
                ..crate::webhook::WebhookSettings::default()
            },
        )
        .await?;
        let webhook_worker = OutboxWorker::webhooks(
            services.store.clone(),
            Arc::new(sender),
            clock,
            OutboxConfig {
                lanes: WEBHOOK_LANES,
                ..outbox
            },
            services.actions.webhook_bell(),
        );
        Ok(Self {
            listener,
            addr: bound,
            state,
            worker,
            webhook_worker,
            store: services.store,
            header_timeout: config.header_timeout,
            shutdown_grace: config.shutdown_grace,
            metrics,
            ssh,
            ssh_host_key,
            stop,
            created_key_file: services.created_key_file,
            public_url: services.public_url,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `ssh_listen` is bound, when it is set.
    pub fn ssh_addr(&self) -> Option<SocketAddr> {
        self.ssh.as_ref().and_then(crate::ssh::SshServer::local_addr)
    }

    /// Where `metrics_listen` is bound, when it is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn store(&self) -> SharedStore {
        self.store.clone()
    }

    /// The site's forms, as configured.
    pub fn forms(&self) -> &Arc<Catalog> {
        self.state.actions.forms()
    }

    /// Serves until `shutdown` resolves, then drains and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = self.stop;
        let stop_tx = Arc::new(stop_tx);
        let ssh = self.ssh.map(|ssh| tokio::spawn(ssh.run(stop_rx.clone())));
        let worker = tokio::spawn(self.worker.run(stop_rx.clone()));
        let webhook_worker = tokio::spawn(self.webhook_worker.run(stop_rx.clone()));
        let janitor = tokio::spawn(retention(self.state.actions.clone(), stop_rx.clone()));
        let header_timeout = self.header_timeout;
        let metrics = self.metrics.map(|(listener, gauges)| {
            let mut stop = stop_rx.clone();
            tokio::spawn(web::serve::serve(
                listener,
                crate::metrics::endpoint::router(gauges),
                header_timeout,
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            ))
        });
        let stopping = self.state.stopping.clone();
        let app = web::router(self.state);
        let mut server_stop = stop_rx;
        let server = web::serve::serve(self.listener, app, header_timeout, async move {
            let _ = server_stop.wait_for(|s| *s).await;
        });
        let trigger_tx = stop_tx.clone();
        let grace = self.shutdown_grace;
        let trigger = tokio::spawn(async move {
            shutdown.await;
            // Before the listener closes: probes on connections still open see `stopping`.
            stopping.store(true, std::sync::atomic::Ordering::Relaxed);
            crate::systemd::notify("STOPPING=1");
            if let Some(grace) = grace {
                // Still serving, `/readyz` saying `stopping`: a load balancer polling it moves
                // traffic away before connections start being refused.
                tracing::info!(grace = ?grace, "shutting down: serving on for shutdown_grace, /readyz says stopping");
                tokio::time::sleep(grace).await;
            }
            tracing::info!("shutting down: finishing requests and mails in flight");
            let _ = trigger_tx.send(true);
        });
        let served = server.await;
        trigger.abort();
        // Whether asked to stop or failed on its own, the worker stops with the server.
        let _ = stop_tx.send(true);
        worker.await.context("outbox worker")?;
        webhook_worker.await.context("webhook worker")?;
        janitor.await.context("retention task")?;
        if let Some(ssh) = ssh {
            ssh.await.context("ssh listener")?;
        }
        if let Some(metrics) = metrics {
            metrics.await.context("metrics listener")?.context("metrics listener")?;
        }
        served.context("web server")?;
        Ok(())
    }
}

/// What every entry point shares: the store, the keys, the templates and the use-cases built on
/// them. `serve` adds a listener and the outbox worker; `tui` and the CLI verbs use it as it is
/// (the mails they queue are sent by whichever `serve` shares the database).
pub struct Services {
    pub actions: Arc<UseCases>,
    pub store: SharedStore,
    pub templates: Arc<Templates>,
    pub outbox_wake: WorkerBell,
    pub created_key_file: Option<PathBuf>,
    pub public_url: String,
}

impl Services {
    /// `default_public_url` is used when `public_url` is not configured.
    pub async fn open(config: &Config, clock: SharedClock, default_public_url: &str) -> anyhow::Result<Services> {
        let (keys, created_key_file) = config.keys.load()?;
        let templates = Arc::new(Templates::load(config.ui_dir.as_deref())?);
        let store = store::connect(&config.database_url)
            .await
            .with_context(|| format!("opening {}", crate::config::redact_url(&config.database_url)))?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| default_public_url.to_string());
        let outbox_wake = WorkerBell::default();
        let composer = Composer::new(
            templates.clone(),
            config.site_name.clone(),
            public_url.clone(),
            config.mail_from.clone(),
            config.mail_lifetime,
        );
        let settings = Settings {
            token_ttl: config.token_ttl,
            log_links: matches!(config.mail, MailTarget::Dir(_)),
            purge_after: config.purge_after,
            mail_guard: crate::domain::MailGuard {
                per_address: config
                    .verify_mails_per_address
                    .map(|(n, window)| (i64::from(n), crate::clock::seconds(window))),
                per_hour: config.max_mails_per_hour.map(i64::from),
            },
            webhook_lifetime: crate::clock::seconds(config.webhook_lifetime),
        };
        let forms = Arc::new(Catalog::new(
            config.forms(),
            &config.default_form,
            templates.clone(),
            config.ui_dir.as_deref(),
        )?);
        let actions = Arc::new(UseCases::new(
            store.clone(),
            keys,
            composer,
            clock,
            outbox_wake.clone(),
            settings,
            forms,
        ));
        Ok(Services {
            actions,
            store,
            templates,
            outbox_wake,
            created_key_file,
            public_url,
        })
    }

    /// For the moderator's commands: links they cause (a resend) point at the configured
    /// `public_url`, or at `listen` when none is set.
    pub async fn for_moderator(config: &Config) -> anyhow::Result<Services> {
        Services::open(config, Arc::new(SystemClock), &config.link_base()).await
    }
}

/// Applies `purge_after_days` at start and then hourly, until shutdown.
async fn retention(actions: Arc<UseCases>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = actions.purge_expired().await {
            tracing::warn!(error = %e, "retention: purge failed; will try again in an hour");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
