//! `TestApp`: the real formgate on port 0 with a temporary SQLite file (or a fresh PostgreSQL
//! database), a real SMTP listener over TCP, and a clock the test can move. One method per
//! endpoint, so tests read as sentences.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use formgate::app::Server;
use formgate::clock::ManualClock;
use formgate::config::{Config, MailTarget, SmtpUrl};
use formgate::domain::{Message, MessageId};
use formgate::mail::OutboxConfig;
use formgate::store::SharedStore;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::pg::TestDatabase;
use super::smtp::{ReceivedMail, TestSmtp};

/// Which store a `TestApp` runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A temporary file; always available.
    Sqlite,
    /// A fresh database on the test server (see `support::pg`); may be skipped.
    Postgres,
}

impl Backend {
    /// The URL of a new, empty database for one test (a file in `dir` for SQLite), and the guard
    /// that drops it afterwards. None: PostgreSQL is unreachable and the test skips itself.
    pub async fn fresh_database(self, dir: &std::path::Path) -> Option<(String, Option<TestDatabase>)> {
        match self {
            Backend::Sqlite => Some((format!("sqlite://{}", dir.join("formgate.db").display()), None)),
            Backend::Postgres => {
                let db = TestDatabase::fresh().await?;
                Some((db.url().to_string(), Some(db)))
            }
        }
    }
}

/// Runs each listed `async fn name(backend: Backend)` on every backend, as the tests
/// `sqlite::name` and `postgres::name`: a test is written once and both stores must pass it.
/// (A test function left out of the list is never called, and the compiler says so.)
macro_rules! on_every_backend {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::support::app::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::support::app::Backend::Postgres).await;
                }
            )+
        }
    };
}
pub(crate) use on_every_backend;

#[allow(dead_code)] // each test binary uses a different subset
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    pub store: SharedStore,
    pub dir: TempDir,
    pub smtp: Option<TestSmtp>,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// A PostgreSQL test database, dropped with the app (declared last: dropped after the rest).
    pub database: Option<TestDatabase>,
}

pub struct Options {
    /// None: write .eml files into `<dir>/mail-outbox`.
    pub smtp: bool,
    pub token_ttl: Duration,
    pub lanes: usize,
    pub lease: Duration,
    /// The worker's hand-over inbox (`OutboxConfig::handover`); 0 turns hand-over off.
    pub handover: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            smtp: true,
            token_ttl: Duration::from_secs(72 * 3600),
            lanes: 2,
            lease: OutboxConfig::default().lease,
            handover: OutboxConfig::default().handover,
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

impl TestApp {
    /// On `backend` with a real SMTP listener and the tests' defaults, plus what `adopt` takes
    /// over from the configuration file `toml` (its forms, say): each test names what it is about.
    #[allow(dead_code)]
    pub async fn spawn_from_toml(
        backend: Backend,
        toml: &str,
        adopt: impl FnOnce(&mut Config, Config),
    ) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, database) = backend.fresh_database(dir.path()).await?;
        let smtp = TestSmtp::start().await;
        let parsed = Config::from_toml(toml, &|_| None).expect("the test's formgate.toml");
        let mut config = Config::for_tests(db, MailTarget::Smtp(SmtpUrl::parse(&smtp.url()).expect("smtp url")));
        config.smtp_timeout = Duration::from_secs(3);
        config.mail_from = "Example Forms <forms@example.org>".parse().expect("mailbox");
        adopt(&mut config, parsed);
        let mut app = Self::spawn_config(config, dir, Some(smtp), &Options::default()).await;
        app.database = database;
        Some(app)
    }

    /// On SQLite, with the default options: for tests with no reason to run on both backends.
    #[allow(dead_code)] // each test binary uses a different subset
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Options::default()).await
    }

    /// On SQLite.
    #[allow(dead_code)]
    pub async fn spawn_with(opts: Options) -> TestApp {
        Self::spawn_on_with(Backend::Sqlite, opts)
            .await
            .expect("SQLite is always available")
    }

    /// None: the backend is unreachable (PostgreSQL, not required) and the test skips itself.
    pub async fn spawn_on(backend: Backend) -> Option<TestApp> {
        Self::spawn_on_with(backend, Options::default()).await
    }

    pub async fn spawn_on_with(backend: Backend, opts: Options) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, database) = backend.fresh_database(dir.path()).await?;
        let smtp = if opts.smtp { Some(TestSmtp::start().await) } else { None };
        let mail = match &smtp {
            Some(s) => MailTarget::Smtp(SmtpUrl::parse(&s.url()).expect("smtp url")),
            None => MailTarget::Dir(dir.path().join("mail-outbox")),
        };
        let mut config = Config::for_tests(db, mail);
        config.token_ttl = opts.token_ttl;
        config.smtp_timeout = Duration::from_secs(3);
        config.mail_from = "Example Forms <forms@example.org>".parse().expect("mailbox");
        let mut app = Self::spawn_config(config, dir, smtp, &opts).await;
        app.database = database;
        Some(app)
    }

    pub async fn spawn_config(config: Config, dir: TempDir, smtp: Option<TestSmtp>, opts: &Options) -> TestApp {
        let clock = ManualClock::starting_now();
        let outbox = OutboxConfig {
            lanes: opts.lanes,
            batch: 64,
            lease: opts.lease,
            poll: Duration::from_millis(100),
            handover: opts.handover,
        };
        let app = Server::build_with(&config, Arc::new(clock.clone()), outbox)
            .await
            .expect("app builds");
        let addr = app.local_addr();
        let store = app.store();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run(async {
            let _ = stopped.await;
        }));
        TestApp {
            addr,
            base: format!("http://{addr}"),
            clock,
            client: client(),
            store,
            dir,
            smtp,
            config,
            stop: Some(stop),
            handle: Some(handle),
            database: None,
        }
    }

    pub fn smtp(&self) -> &TestSmtp {
        self.smtp.as_ref().expect("this TestApp has an SMTP listener")
    }

    pub fn clock_now(&self) -> i64 {
        formgate::clock::Clock::now(&self.clock)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn head(&self, path: &str) -> reqwest::Response {
        self.client.head(self.url(path)).send().await.expect("HEAD")
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let body = serde_urlencoded::to_string(fields).expect("encode");
        self.client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn post_json(&self, path: &str, value: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&value)
            .send()
            .await
            .expect("POST json")
    }

    /// Posts a valid contact form, as a browser would.
    pub async fn submit(&self, email: &str) -> reqwest::Response {
        self.post_form(
            "/contact",
            &[
                ("name", "Ada Lovelace"),
                ("email", email),
                ("message", "Hello, I'd like a quote."),
            ],
        )
        .await
    }

    /// Posts a valid form as JSON and returns (id, receipt).
    pub async fn submit_json(&self, email: &str) -> (MessageId, String) {
        let res = self
            .post_json(
                "/contact",
                serde_json::json!({ "name": "Ada", "email": email, "message": "Hello" }),
            )
            .await;
        assert_eq!(res.status(), 202);
        let v: serde_json::Value = res.json().await.expect("json");
        (
            MessageId(v["id"].as_i64().expect("id")),
            v["receipt"].as_str().expect("receipt").to_string(),
        )
    }

    pub async fn message(&self, id: MessageId) -> Message {
        self.store.message(id).await.expect("store").expect("message exists")
    }

    /// Waits for the `n`-th mail (1-based) over SMTP.
    pub async fn mail(&self, n: usize) -> ReceivedMail {
        let all = self.smtp().wait_for(n, Duration::from_secs(10)).await;
        all[n - 1].clone()
    }

    /// Begins the shutdown SIGTERM begins, without waiting for it (`stop` still waits).
    #[allow(dead_code)]
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the app the way SIGTERM does and waits until it has drained. Returns its PostgreSQL
    /// test database, if any, so the test can still look into it (it is dropped with the value).
    pub async fn stop(mut self) -> Option<TestDatabase> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("app task").expect("app exits cleanly");
        }
        self.database.take()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The path of the verification link in a mail's text part (`/verify/…`).
pub fn verify_path(mail: &ReceivedMail) -> String {
    let text = mail.text_body();
    let start = text
        .find("/verify/")
        .unwrap_or_else(|| panic!("no verification link in:\n{text}"));
    text[start..].split_whitespace().next().expect("link").to_string()
}

/// The six-digit code in a verification mail.
pub fn code(mail: &ReceivedMail) -> String {
    let text = mail.text_body();
    text.split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in:\n{text}"))
        .to_string()
}

/// The receipt in a `303` to `/contact/sent?r=…`.
pub fn receipt_from_redirect(res: &reqwest::Response) -> String {
    let loc = res
        .headers()
        .get("location")
        .expect("location")
        .to_str()
        .expect("ascii");
    let r = loc.split("r=").nth(1).expect("receipt in redirect");
    r.split('&').next().expect("receipt").to_string()
}
