//! What runs on an SSH session channel: the dashboard (a pty and a shell request) or one verb
//! (an exec request), each as the authenticated moderator.

use std::io::Write;
use std::sync::Arc;

use ratatui::crossterm::{cursor, event, execute, terminal};
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use russh::ChannelId;
use russh::server::Handle;
use tokio::sync::{mpsc, watch};

use super::Moderator;
use super::server::Shared;
use crate::actions::UseCases;
use crate::cli::{Cli, Command, run_verb, verbs};
use crate::tui::remote::{RemoteBackend, SharedSize};

/// Frames for the channel: collected by `write`, handed to the sending task by `flush` (ratatui
/// flushes once per frame), so one frame is one SSH data message, not hundreds.
struct ChannelWriter {
    pending: Vec<u8>,
    frames: mpsc::UnboundedSender<Vec<u8>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let frame = std::mem::take(&mut self.pending);
            self.frames
                .send(frame)
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the SSH channel is gone"))?;
        }
        Ok(())
    }
}

/// When a dashboard session ends without the moderator quitting: serve stops, or nothing has
/// been typed for `idle` (`ssh_idle_timeout`). The dashboard writes every second, so SSH's own
/// inactivity timer, which outgoing data resets, would never fire.
pub(super) struct Until {
    pub stop: watch::Receiver<bool>,
    /// Counts inputs (the connection's `data` bumps it).
    pub typed: Arc<std::sync::atomic::AtomicU64>,
    pub idle: std::time::Duration,
}

impl Until {
    async fn reached(mut self) {
        let idle = async {
            let step = (self.idle / 20).clamp(std::time::Duration::from_millis(100), std::time::Duration::from_secs(5));
            let mut seen = self.typed.load(std::sync::atomic::Ordering::SeqCst);
            let mut since = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(step).await;
                let now = self.typed.load(std::sync::atomic::Ordering::SeqCst);
                if now != seen {
                    (seen, since) = (now, tokio::time::Instant::now());
                } else if since.elapsed() >= self.idle {
                    return;
                }
            }
        };
        tokio::select! {
            () = idle => {}
            _ = self.stop.wait_for(|s| *s) => {}
        }
    }
}

/// The dashboard on `channel` until the moderator quits, the channel ends, they are idle for
/// `ssh_idle_timeout` or serve stops.
pub(super) async fn dashboard(
    handle: Handle,
    channel: ChannelId,
    size: SharedSize,
    input: mpsc::UnboundedReceiver<event::Event>,
    actions: Arc<UseCases>,
    who: Arc<Moderator>,
    until: Until,
) {
    let (frames_tx, mut frames) = mpsc::unbounded_channel::<Vec<u8>>();
    let sender = {
        let handle = handle.clone();
        tokio::spawn(async move {
            while let Some(frame) = frames.recv().await {
                if handle.data(channel, frame).await.is_err() {
                    break;
                }
            }
        })
    };
    let writer = ChannelWriter {
        pending: Vec::new(),
        frames: frames_tx,
    };
    let ended = run_dashboard(writer, size, input, actions, &who, until.reached()).await;
    // The writer is gone with the terminal: the sender sends what is left, then ends.
    let _ = sender.await;
    let code = match ended {
        Ok(()) => 0,
        Err(e) => {
            tracing::warn!(moderator = %who.name, error = %format!("{e:#}"), "ssh: dashboard ended with an error");
            1
        }
    };
    tracing::info!(moderator = %who.name, "ssh: dashboard session ended");
    let _ = handle.exit_status_request(channel, code).await;
    let _ = handle.eof(channel).await;
    let _ = handle.close(channel).await;
}

async fn run_dashboard(
    writer: ChannelWriter,
    size: SharedSize,
    input: mpsc::UnboundedReceiver<event::Event>,
    actions: Arc<UseCases>,
    who: &Moderator,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut backend = RemoteBackend::new(writer, size.clone());
    execute!(
        backend.writer(),
        terminal::EnterAlternateScreen,
        event::EnableBracketedPaste,
        cursor::Hide
    )?;
    let area = size.get();
    let mut term = Terminal::with_options(
        backend,
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, area.width, area.height)),
        },
    )?;
    term.clear()?;
    let result = crate::tui::session(&mut term, input, actions, who.name.clone(), who.is_viewer(), stop).await;
    // Whatever happened, give the moderator their terminal back as it was.
    let _ = execute!(
        term.backend_mut().writer(),
        event::DisableBracketedPaste,
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
    result
}

/// `ssh host VERB ARGS…`: the verb as the local CLI runs it, its stdout and stderr sent as the
/// channel's, its exit status the channel's.
pub(super) async fn verb(
    handle: Handle,
    channel: ChannelId,
    command: String,
    shared: Arc<Shared>,
    who: Arc<Moderator>,
) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_command(&command, &shared, &who, &mut out, &mut err).await;
    tracing::info!(moderator = %who.name, code, "ssh: verb ran");
    if !out.is_empty() {
        let _ = handle.data(channel, out).await;
    }
    if !err.is_empty() {
        let _ = handle.extended_data(channel, 1, err).await;
    }
    let _ = handle.exit_status_request(channel, u32::from(code)).await;
    let _ = handle.eof(channel).await;
    let _ = handle.close(channel).await;
}

async fn run_command(command: &str, shared: &Shared, who: &Moderator, out: &mut Vec<u8>, err: &mut Vec<u8>) -> u8 {
    let words = match split_words(command) {
        Ok(w) if !w.is_empty() => w,
        Ok(_) => {
            let _ = write!(err, "{}", super::text::VERBS_ONLY);
            return 2;
        }
        Err(why) => {
            let _ = writeln!(err, "formgate: cannot read the command: {why}");
            return 2;
        }
    };
    let cli = match <Cli as clap::Parser>::try_parse_from(std::iter::once("formgate".to_string()).chain(words)) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            return if e.use_stderr() {
                let _ = write!(err, "{text}");
                2
            } else {
                let _ = write!(out, "{text}");
                0
            };
        }
    };
    if cli.config.is_some() {
        let _ = writeln!(err, "formgate: --config is not available over SSH");
        return 2;
    }
    if who.is_viewer() && changes_something(&cli.command) {
        let _ = writeln!(
            err,
            "formgate: {} is a viewer: they can read everything and change nothing",
            who.name
        );
        return 1;
    }
    let name = who.name.clone();
    let act_as = move |given: Option<String>| match given {
        Some(_) => Err(format!(
            "--as is not available over SSH: you act as {name}, the moderator your key belongs to"
        )),
        None => Ok(name.clone()),
    };
    // Whether the client's stdout is a terminal cannot be known from here: taken as one, so a
    // CSV export's visitor text is escaped, never written raw into a moderator's terminal (the
    // JSON export is lossless and always inert).
    let mut io = verbs::Console {
        out,
        err,
        terminal: true,
    };
    match run_verb(cli.command, &shared.config, &shared.actions, &mut io, &act_as).await {
        Ok(Some(code)) => code,
        Ok(None) => {
            let _ = write!(io.err, "{}", super::text::VERBS_ONLY);
            2
        }
        Err(e) => {
            let _ = writeln!(io.err, "formgate: {e:#}");
            1
        }
    }
}

/// The verbs that change something: what a viewer may not run.
fn changes_something(command: &Command) -> bool {
    !matches!(
        command,
        Command::List { .. } | Command::Show { .. } | Command::Suppressed { .. } | Command::Export { .. }
    )
}

/// A command line as a shell would split it: words apart at spaces, '…' and "…" quoting, `\`
/// escaping the next character. (No variables, globs or anything else a shell would run.)
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("a ' is not closed".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => w.push(c),
                            None => return Err("a \" is not closed".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("a \" is not closed".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("a \\ ends the line".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split_words;

    #[test]
    fn commands_split_as_a_shell_would() {
        assert_eq!(split_words("list --json").unwrap(), ["list", "--json"]);
        assert_eq!(
            split_words(r#"list --search "Ada Lovelace"  --limit 5"#).unwrap(),
            ["list", "--search", "Ada Lovelace", "--limit", "5"]
        );
        assert_eq!(split_words(r"show 'a b'\ c").unwrap(), ["show", "a b c"]);
        assert_eq!(split_words(r#"x "" y"#).unwrap(), ["x", "", "y"]);
        assert!(split_words("list 'open").is_err());
        assert!(split_words("   ").unwrap().is_empty());
    }
}
