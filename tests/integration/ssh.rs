//! The dashboard over SSH, driven as a moderator would: the real `formgate serve` binary, the
//! real OpenSSH client (`ssh`, `ssh-keygen`, `ssh-keyscan` from openssh-client) with a fresh key
//! per test and the host key checked against the fingerprint `serve` printed, and the dashboard
//! in tmux. `FORMGATE_REQUIRE_SSH=1` (CI) makes a missing client or tmux a failure, not a skip.
//!
//! The authentication cases that OpenSSH will not even try (a password when the server offers
//! only keys) are checked with russh's own client, in process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::app::{client, verify_path};
use crate::support::serve::{Serve, formgate};
use crate::support::smtp::TestSmtp;

fn tools_present() -> bool {
    let have = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let present = ["ssh", "ssh-keygen", "ssh-keyscan", "tmux"].iter().all(|t| have(t));
    if !present {
        assert!(
            std::env::var("FORMGATE_REQUIRE_SSH").is_err(),
            "FORMGATE_REQUIRE_SSH is set but ssh, ssh-keygen, ssh-keyscan or tmux is missing (apt-get install openssh-client tmux)"
        );
        eprintln!("SKIPPED: no OpenSSH client or tmux; set FORMGATE_REQUIRE_SSH=1 to make this a failure");
    }
    present
}

/// A fresh Ed25519 key pair in `dir`: the private key's path and the public line.
fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", &format!("{name}@test"), "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (path, public.trim().to_string())
}

/// A site with an SSH dashboard: `serve` on SQLite with real SMTP, two moderators (alice acts,
/// bob only reads), and the client side of it.
struct Site {
    dir: tempfile::TempDir,
    serve: Serve,
    smtp: TestSmtp,
    env: Vec<(&'static str, String)>,
    port: u16,
    alice: PathBuf,
    bob: PathBuf,
    known_hosts: PathBuf,
}

async fn site(extra: &[(&'static str, &str)]) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = keypair(dir.path(), "alice");
    let (bob, bob_pub) = keypair(dir.path(), "bob");
    std::fs::write(
        dir.path().join("formgate.toml"),
        format!(
            "[[moderators]]\nname = \"alice\"\nkeys = [\"{alice_pub}\"]\n\n\
             [[moderators]]\nname = \"bob\"\nkeys = [\"{bob_pub}\"]\nrole = \"viewer\"\n"
        ),
    )
    .unwrap();
    let smtp = TestSmtp::start().await;
    let mut env = vec![
        ("FORMGATE_LISTEN", "127.0.0.1:0".to_string()),
        ("FORMGATE_SSH_LISTEN", "127.0.0.1:0".to_string()),
        (
            "FORMGATE_DATABASE_URL",
            format!("sqlite://{}/fg.db", dir.path().display()),
        ),
        (
            "FORMGATE_SECRET_KEYS",
            "ssh-test-signing-key-0123456789abcdefghijklmn".to_string(),
        ),
        ("FORMGATE_SMTP_URL", smtp.url()),
        ("FORMGATE_STAFF_INBOX", "staff@example.org".to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let serve = Serve::start(dir.path(), &env);
    let line = serve
        .banner
        .iter()
        .find(|l| l.trim_start().starts_with("ssh dashboard"))
        .expect("the banner names the SSH dashboard")
        .clone();
    let words: Vec<&str> = line.split_whitespace().collect();
    let port: u16 = words[words.iter().position(|w| *w == "-p").unwrap() + 1]
        .parse()
        .unwrap();
    let printed = words
        .iter()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap()
        .trim_end_matches([',', ';', ')'])
        .to_string();
    // The host key the server presents, pinned only if it is the one the banner printed.
    let scanned = Command::new("ssh-keyscan")
        .args(["-p", &port.to_string(), "-t", "ed25519", "127.0.0.1"])
        .output()
        .unwrap();
    let scanned = String::from_utf8(scanned.stdout).unwrap();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, &scanned).unwrap();
    let fingerprint = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&known_hosts)
        .output()
        .unwrap();
    let fingerprint = String::from_utf8(fingerprint.stdout).unwrap();
    assert!(
        fingerprint.contains(&printed),
        "the server's key ({fingerprint}) is the one serve printed ({printed})"
    );
    Site {
        dir,
        serve,
        smtp,
        env,
        port,
        alice,
        bob,
        known_hosts,
    }
}

impl Site {
    fn ssh_args(&self, key: &Path) -> Vec<String> {
        vec![
            "-p".into(),
            self.port.to_string(),
            "-i".into(),
            key.display().to_string(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "-o".into(),
            "LogLevel=ERROR".into(),
        ]
    }

    /// `ssh … ARGS` (a verb), as a script would run it.
    fn exec(&self, key: &Path, args: &[&str]) -> Output {
        Command::new("ssh")
            .args(self.ssh_args(key))
            .arg("127.0.0.1")
            .args(args)
            .output()
            .unwrap()
    }

    /// The same verb run locally on the server, on the same database.
    fn local(&self, args: &[&str]) -> Output {
        formgate(self.dir.path(), &self.env).args(args).output().unwrap()
    }

    /// A visitor posts and confirms by link: a verified message. Returns its id.
    async fn verified_message(&self, n: usize) -> i64 {
        let res = client()
            .post(format!("{}/contact", self.serve.base))
            .form(&[
                ("name", format!("Visitor {n}")),
                ("email", format!("v{n}@example.org")),
                ("message", "Hello over SSH".to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let mails = self.smtp.wait_for(n, Duration::from_secs(20)).await;
        let mail = mails
            .iter()
            .find(|m| m.rcpt_to.iter().any(|r| r == &format!("v{n}@example.org")))
            .unwrap();
        let link = format!("{}{}", self.serve.base, verify_path(mail));
        let confirmed = client().post(&link).send().await.unwrap().status();
        assert!(confirmed.is_success() || confirmed.is_redirection());
        i64::try_from(n).unwrap()
    }

    fn status_of(&self, id: i64) -> String {
        let out = self.local(&["show", &id.to_string(), "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["message"]["status"].as_str().unwrap().to_string()
    }

    /// The dashboard over `ssh -t` in a tmux window of `width`×`height`.
    fn dashboard(&self, key: &Path, width: u16, height: u16) -> Tmux {
        let name = format!("fg-{}-{}", std::process::id(), rand_suffix());
        let mut command = vec!["ssh".to_string(), "-t".to_string()];
        command.extend(self.ssh_args(key));
        command.push("127.0.0.1".into());
        let line = command.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ");
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .arg(format!("{line}; echo SSH-EXIT=$?; sleep 60"))
            .status()
            .unwrap();
        assert!(status.success());
        Tmux { name }
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

struct Tmux {
    name: String,
}

impl Tmux {
    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (up to `within`) until the screen shows `text`; the screen it saw.
    fn wait_for(&self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(Instant::now() < deadline, "waited for {text:?}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn resize(&self, width: u16, height: u16) {
        let status = Command::new("tmux")
            .args([
                "resize-window",
                "-t",
                &self.name,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.name]).status();
    }
}

#[tokio::test]
async fn a_moderator_releases_over_ssh_and_the_audit_names_them() {
    if !tools_present() {
        return;
    }
    let site = site(&[]).await;
    let id = site.verified_message(1).await;
    site.verified_message(2).await;
    let alice = site.dashboard(&site.alice, 100, 30);
    alice.wait_for("as alice", Duration::from_secs(10));
    alice.keys(&["2"]); // the Verified tab
    alice.wait_for("Visitor 2", Duration::from_secs(5));
    // Both selected: releasing more than one asks first.
    alice.keys(&["a"]);
    alice.keys(&["r"]);
    alice.wait_for("confirm", Duration::from_secs(5));
    alice.keys(&["y"]);
    alice.wait_for("Released 2", Duration::from_secs(10));
    assert_eq!(site.status_of(id), "released");
    assert_eq!(site.status_of(2), "released");
    let shown = site.local(&["show", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let release = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "release")
        .expect("a release line");
    assert_eq!(release["actor"], "alice", "the audit names the key's moderator");

    // A resize redraws at the new size: the top line's right end moves with the window.
    let before = alice.screen();
    let wide = before.lines().next().unwrap().trim_end().len();
    alice.resize(80, 20);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let screen = alice.screen();
        let top = screen.lines().next().unwrap_or("").trim_end().chars().count();
        if top <= 80 && top > 0 && screen.lines().next().unwrap().contains("as alice") {
            assert!(top < wide, "narrower: {top} < {wide}");
            break;
        }
        assert!(Instant::now() < deadline, "not redrawn at 80 columns:\n{screen}");
        std::thread::sleep(Duration::from_millis(50));
    }
    alice.keys(&["q"]);
    alice.wait_for("SSH-EXIT=0", Duration::from_secs(5));
}

#[tokio::test]
async fn verbs_over_ssh_print_what_the_local_cli_prints_and_keys_decide_who_acts() {
    if !tools_present() {
        return;
    }
    let site = site(&[("FORMGATE_METRICS_LISTEN", "127.0.0.1:0")]).await;
    site.verified_message(1).await;

    let remote = site.exec(&site.alice, &["list", "--json"]);
    let local = site.local(&["list", "--json"]);
    assert!(remote.status.success(), "{remote:?}");
    assert_eq!(
        String::from_utf8_lossy(&remote.stdout),
        String::from_utf8_lossy(&local.stdout),
        "list --json over SSH is the local output"
    );
    let missing = site.exec(&site.alice, &["show", "99"]);
    let missing_local = site.local(&["show", "99"]);
    assert_eq!(missing.status.code(), missing_local.status.code());
    assert_eq!(missing.stderr, missing_local.stderr, "the same error, on stderr");

    // Nothing the client sends changes who acts.
    let posing = site.exec(&site.alice, &["release", "1", "--as", "mallory"]);
    assert_eq!(posing.status.code(), Some(2), "{posing:?}");
    assert!(String::from_utf8_lossy(&posing.stderr).contains("you act as alice"));

    // A viewer reads and is refused every change.
    assert!(site.exec(&site.bob, &["list"]).status.success());
    let refused = site.exec(&site.bob, &["release", "1"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("viewer"),
        "{refused:?}"
    );
    assert_eq!(site.status_of(1), "verified");
    let bob = site.dashboard(&site.bob, 100, 30);
    bob.wait_for("as bob", Duration::from_secs(10));
    bob.keys(&["2"]);
    bob.wait_for("Visitor 1", Duration::from_secs(5));
    bob.keys(&["r"]);
    bob.wait_for("you are a viewer", Duration::from_secs(5));
    assert_eq!(site.status_of(1), "verified");

    // An unknown key gets nothing; neither does a shell without a terminal, or sftp.
    let (stranger, _) = keypair(site.dir.path(), "stranger");
    let out = site.exec(&stranger, &["list"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
    let no_pty = Command::new("ssh")
        .args(site.ssh_args(&site.alice))
        .arg("-T")
        .arg("127.0.0.1")
        .output()
        .unwrap();
    assert_eq!(no_pty.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_pty.stdout).contains("needs a terminal"));
    let sftp = Command::new("ssh")
        .args(site.ssh_args(&site.alice))
        .args(["-s", "127.0.0.1", "sftp"])
        .output()
        .unwrap();
    assert_ne!(sftp.status.code(), Some(0), "{sftp:?}");

    // The metrics saw it: logins by outcome, and bob's dashboard still open.
    let metrics = site.serve.banner_url("metrics").unwrap();
    let text = client().get(&metrics).send().await.unwrap().text().await.unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert!(value(r#"formgate_ssh_logins_total{outcome="accepted"}"#) >= 8.0);
    assert!(value(r#"formgate_ssh_logins_total{outcome="refused"}"#) >= 1.0);
    assert_eq!(value("formgate_ssh_sessions"), 1.0, "bob's dashboard");
}

#[tokio::test]
async fn two_sessions_see_each_others_changes_and_a_killed_client_frees_its_seat() {
    if !tools_present() {
        return;
    }
    // Room for two sessions in all: a third is refused until one is freed.
    let site = site(&[("FORMGATE_SSH_MAX_SESSIONS", "2")]).await;
    site.verified_message(1).await;
    let one = site.dashboard(&site.alice, 100, 30);
    let two = site.dashboard(&site.bob, 100, 30);
    one.wait_for("Verified 1", Duration::from_secs(10));
    two.wait_for("Verified 1", Duration::from_secs(10));
    one.keys(&["2"]);
    one.wait_for("Visitor 1", Duration::from_secs(5));
    one.keys(&["d"]);
    one.wait_for("confirm", Duration::from_secs(5));
    one.keys(&["y"]);
    one.wait_for("Trash 1", Duration::from_secs(5));
    let seen = Instant::now();
    two.wait_for("Trash 1", Duration::from_secs(3));
    assert!(seen.elapsed() < Duration::from_millis(1500), "{:?}", seen.elapsed());

    let full = site.exec(&site.alice, &["list"]);
    assert!(!full.status.success(), "a third session is refused: {full:?}");
    drop(two); // tmux kills the ssh client: its connection drops
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if site.exec(&site.alice, &["list"]).status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "the killed client's seat was never freed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What OpenSSH will not try against a server that offers only keys, tried with russh's client.
#[tokio::test]
async fn only_a_listed_key_logs_in_whatever_else_is_tried() {
    use russh::keys::{PrivateKeyWithHashAlg, load_secret_key};
    use std::sync::Arc;

    struct Pinned(russh::keys::PublicKey);
    impl russh::client::Handler for Pinned {
        type Error = russh::Error;
        async fn check_server_key(&mut self, key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
            Ok(key.public_key().key_data() == self.0.key_data())
        }
    }

    if !tools_present() {
        return;
    }
    let site = site(&[]).await;
    let host = russh::keys::PublicKey::from_openssh(
        std::fs::read_to_string(&site.known_hosts)
            .unwrap()
            .split_once(' ')
            .unwrap()
            .1
            .trim(),
    )
    .unwrap();
    // A client Handle is itself a future (of the session's end): kept, never awaited.
    let mut s = russh::client::connect(
        Arc::new(russh::client::Config::default()),
        ("127.0.0.1", site.port),
        Pinned(host.clone()),
    )
    .await
    .unwrap();
    assert!(!s.authenticate_password("alice", "anything").await.unwrap().success());
    let ki = s.authenticate_keyboard_interactive_start("alice", None).await.unwrap();
    assert!(
        matches!(ki, russh::client::KeyboardInteractiveAuthResponse::Failure { .. }),
        "keyboard-interactive refused"
    );
    let (stranger, _) = keypair(site.dir.path(), "stranger2");
    let stranger = Arc::new(load_secret_key(&stranger, None).unwrap());
    assert!(
        !s.authenticate_publickey("alice", PrivateKeyWithHashAlg::new(stranger, None))
            .await
            .unwrap()
            .success()
    );
    // Alice's key under another user name is still alice: the key decides, not the name.
    let alice = Arc::new(load_secret_key(&site.alice, None).unwrap());
    assert!(
        s.authenticate_publickey("root", PrivateKeyWithHashAlg::new(alice, None))
            .await
            .unwrap()
            .success()
    );
    let mut channel = s.channel_open_session().await.unwrap();
    channel.exec(true, "list --json").await.unwrap();
    let mut out = Vec::new();
    let mut code = None;
    while let Some(msg) = channel.wait().await {
        match msg {
            russh::ChannelMsg::Data { data } => out.extend_from_slice(&data),
            russh::ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status),
            _ => {}
        }
    }
    assert_eq!(code, Some(0));
    assert!(String::from_utf8_lossy(&out).starts_with('['));
    let sftp = s.channel_open_session().await.unwrap();
    sftp.request_subsystem(true, "sftp").await.unwrap();
    let mut sftp = sftp;
    let first = tokio::time::timeout(Duration::from_secs(5), sftp.wait()).await.unwrap();
    assert!(matches!(first, Some(russh::ChannelMsg::Failure)), "{first:?}");

    // Guessing is throttled per address: after more than 10 failures in a minute, this address
    // is turned away before any check, even with a good key.
    let guesses = (0..11).map(|_| {
        let host = host.clone();
        let port = site.port;
        tokio::spawn(async move {
            let mut g = russh::client::connect(
                Arc::new(russh::client::Config::default()),
                ("127.0.0.1", port),
                Pinned(host),
            )
            .await
            .unwrap();
            let _ = g.authenticate_password("alice", "guess").await;
        })
    });
    for g in guesses.collect::<Vec<_>>() {
        g.await.unwrap();
    }
    let alice = Arc::new(load_secret_key(&site.alice, None).unwrap());
    let turned_away = match russh::client::connect(
        Arc::new(russh::client::Config::default()),
        ("127.0.0.1", site.port),
        Pinned(host.clone()),
    )
    .await
    {
        Ok(mut h) => !matches!(
            h.authenticate_publickey("alice", PrivateKeyWithHashAlg::new(alice, None)).await,
            Ok(r) if r.success()
        ),
        Err(_) => true,
    };
    assert!(
        turned_away,
        "an address over the failure limit is refused, whatever it offers"
    );
}

#[tokio::test]
async fn an_idle_session_is_closed_after_ssh_idle_timeout() {
    if !tools_present() {
        return;
    }
    let site = site(&[("FORMGATE_SSH_IDLE_TIMEOUT", "2s")]).await;
    let alice = site.dashboard(&site.alice, 100, 30);
    alice.wait_for("as alice", Duration::from_secs(10));
    let opened = Instant::now();
    // Typing keeps it open…
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(800));
        alice.keys(&["j"]);
    }
    assert!(!alice.screen().contains("SSH-EXIT"), "closed while in use");
    // …and two quiet seconds close it, though the dashboard itself writes every second.
    alice.wait_for("SSH-EXIT=0", Duration::from_secs(8));
    assert!(opened.elapsed() >= Duration::from_secs(4), "{:?}", opened.elapsed());
}
