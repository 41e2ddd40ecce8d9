//! The real `formgate serve` binary, started in a folder with only the environment a test gives
//! it, its banner read, its logs collected, stopped by SIGTERM as systemd would.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// `formgate` run in `dir` with exactly `env` (and `PATH`).
pub fn formgate(dir: &Path, env: &[(&str, String)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_formgate"));
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

pub struct Serve {
    child: Child,
    /// The banner, one entry per line, up to and including its first `form` line.
    pub banner: Vec<String>,
    /// `http://127.0.0.1:PORT`: where the banner says it listens.
    pub base: String,
    stderr: Option<JoinHandle<String>>,
}

impl Serve {
    /// Starts `formgate serve` and waits (up to 30 s) until its banner names its forms.
    pub fn start(dir: &Path, env: &[(&str, String)]) -> Serve {
        let mut child = formgate(dir, env)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
        let (line_tx, line_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        loop {
            let line = line_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("serve prints its banner within 30 s");
            let done = line.trim_start().starts_with("form ");
            banner.push(line);
            if done {
                break;
            }
        }
        let base = banner[0]
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .to_string();
        Serve {
            child,
            banner,
            base,
            stderr: Some(stderr),
        }
    }

    /// The first URL on the banner line that starts with `label`.
    pub fn banner_url(&self, label: &str) -> Option<String> {
        self.banner
            .iter()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
            .map(str::to_string)
    }

    /// SIGTERM, then the exit status and everything it wrote to stderr.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        let logs = self.stderr.take().unwrap().join().unwrap();
        (status, logs)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // A failed test must not leave a server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
