//! `formgate tui`: the moderators' dashboard.
//!
//! ```text
//! key ──keymap──▶ Action ──update──▶ State (+ Effect) ──effects (tokio)──▶ Action ─▶ …
//!                                     └──view (pure) ──▶ terminal
//! ```
//!
//! `state` is plain data, `keymap` and `update` are pure and synchronous, `effects` does the I/O
//! on tokio tasks, `view/` draws (one file per panel), `safe` keeps visitor text from talking to
//! the terminal, `text` holds every string a moderator reads.
//!
//! [`session`] is the dashboard itself, over any terminal: input events in, frames out to any
//! ratatui backend. [`run`] gives it the local terminal (crossterm's reader and stdout); a
//! remote terminal (an SSH channel) gives it the events [`input::InputParser`] reads from the
//! channel's bytes and a backend writing to the channel.

pub mod action;
pub mod effects;
pub mod input;
pub mod keymap;
pub mod remote;
pub mod safe;
pub mod state;
pub mod text;
pub mod update;
pub mod view;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use std::io::{IsTerminal, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use anyhow::Context;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::crossterm::{cursor, execute, terminal};
use tokio::sync::mpsc;
use tracing::instrument::WithSubscriber;

use crate::app::Services;
use action::{Action, Effect};
use state::State;

/// How often counts and the rows on screen are read again.
/// The least time between two refreshes caused by pushed changes.
const PUSHED_REFRESH_GAP: Duration = Duration::from_millis(250);
const TICK: Duration = Duration::from_secs(1);
/// How long quitting waits for verbs still running (each is one transaction).
const DRAIN: Duration = Duration::from_secs(10);

/// Runs the dashboard until the moderator quits, the terminal goes away, or SIGTERM/SIGHUP.
/// `actor` is the name the audit trail records.
pub async fn run(services: Services, actor: String) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("formgate tui needs a terminal (stdout is not one)");
    }
    let actions = services.actions.clone();
    let mut screen = Screen::enter().context("setting up the terminal")?;
    // Everything the dashboard does logs nowhere while it owns the terminal: a log line on
    // stderr would be drawn over the screen. Outcomes and errors go to the status line.
    let input = spawn_input_thread()?;
    let result = session(&mut screen.terminal, input, actions, actor, false, stop_signal())
        .with_subscriber(tracing::subscriber::NoSubscriber::default())
        .await;
    drop(screen);
    result
}

/// One moderator's dashboard on `terminal`, reading `input`, acting as `actor`, until they
/// quit, the input ends (the terminal is gone) or `stop` resolves.
pub async fn session<B>(
    terminal: &mut Terminal<B>,
    mut input_rx: mpsc::UnboundedReceiver<Event>,
    actions: Arc<crate::actions::UseCases>,
    actor: String,
    viewer: bool,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()>
where
    B: ratatui::backend::Backend,
    B::Error: Send + Sync + 'static,
{
    // The viewport, not the backend: a remote terminal's size is what it reported.
    let size = terminal.get_frame().area();
    let mut app = State::new(actor.clone(), actions.now(), size.width, size.height);
    app.viewer = viewer;
    app.learn_forms(actions.forms());
    let actor: Arc<str> = actor.into();
    let (effect_tx, mut effect_rx) = mpsc::unbounded_channel::<Action>();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = std::pin::pin!(stop);
    let mut running: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    // PostgreSQL pushes changes (LISTEN/NOTIFY): refresh at once instead of at the next tick,
    // at most every PUSHED_REFRESH_GAP so a burst of writes costs one reload. The tick stays as
    // the fallback for SQLite and for notifications lost in a reconnect.
    let changes = actions.store().changes().await;
    let mut last_refresh = tokio::time::Instant::now();

    loop {
        if PANICKED.load(Ordering::SeqCst) {
            anyhow::bail!("the dashboard stopped after an internal error (reported above)");
        }
        terminal.draw(|frame| view::draw(frame, &app)).context("drawing")?;
        let action = tokio::select! {
            event = input_rx.recv() => match event {
                Some(Event::Key(key)) if key.kind != KeyEventKind::Release => keymap::action_for(key, app.mode()),
                Some(Event::Resize(w, h)) => {
                    // A fixed viewport (a remote terminal) learns its size only from here.
                    terminal
                        .resize(ratatui::layout::Rect::new(0, 0, w, h))
                        .context("resizing")?;
                    Some(Action::Resize(w, h))
                }
                Some(Event::Paste(text)) => Some(Action::Paste(text)),
                Some(_) => None,
                // The terminal is gone (the input thread ended).
                None => Some(Action::Quit),
            },
            Some(action) = effect_rx.recv() => Some(action),
            _ = tick.tick() => {
                last_refresh = tokio::time::Instant::now();
                Some(Action::Tick(actions.now()))
            }
            _ = async {
                match &changes {
                    Some(n) => n.notified().await,
                    None => std::future::pending().await,
                }
            } => {
                if last_refresh.elapsed() >= PUSHED_REFRESH_GAP {
                    last_refresh = tokio::time::Instant::now();
                    Some(Action::Tick(actions.now()))
                } else {
                    None
                }
            }
            _ = &mut stop => Some(Action::Quit),
        };
        let Some(action) = action else { continue };
        match update::update(&mut app, action) {
            Some(Effect::Quit) => break,
            Some(effect) => {
                let is_verb = matches!(effect, Effect::Run { .. } | Effect::Unsuppress(_));
                let handle = effects::spawn(actions.clone(), actor.clone(), effect, effect_tx.clone());
                if is_verb {
                    running.retain(|h| !h.is_finished());
                    running.push(handle);
                }
            }
            None => {}
        }
    }
    // A verb already started finishes (or not) as one transaction either way; waiting a little
    // means quitting right after pressing `r` does not leave the moderator guessing.
    running.retain(|h| !h.is_finished());
    if running.is_empty() {
        return Ok(());
    }
    app.status = Some(state::StatusLine {
        text: text::FINISHING.into(),
        tone: state::Tone::Info,
    });
    let _ = terminal.draw(|frame| view::draw(frame, &app));
    let _ = tokio::time::timeout(DRAIN, async {
        for h in running {
            let _ = h.await;
        }
    })
    .await;
    Ok(())
}

/// Terminal events from a plain thread (crossterm's reader blocks), until the receiver is gone.
fn spawn_input_thread() -> anyhow::Result<mpsc::UnboundedReceiver<Event>> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("tui-input".into())
        .spawn(move || {
            while !tx.is_closed() {
                match event::poll(Duration::from_millis(200)) {
                    Ok(true) => match event::read() {
                        Ok(ev) => {
                            if tx.send(ev).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    },
                    Ok(false) => {}
                    Err(_) => break,
                }
            }
        })
        .context("starting the input thread")?;
    Ok(rx)
}

/// SIGTERM (a service manager) or SIGHUP (the SSH connection dropped).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let wait = |kind| async move {
        match signal(kind) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = wait(SignalKind::terminate()) => {}
        _ = wait(SignalKind::hangup()) => {}
    }
}

/// The terminal in raw mode on the alternate screen; dropping it (or a panic) puts it back.
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

/// The terminal is ours: restoring it is due (once).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// A thread panicked: the loop stops at its next turn (the hook already restored the terminal).
static PANICKED: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

impl Screen {
    fn enter() -> anyhow::Result<Screen> {
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                PANICKED.store(true, Ordering::SeqCst);
                previous(info);
            }));
        });
        ACTIVE.store(true, Ordering::SeqCst);
        let setup = (|| -> std::io::Result<Terminal<CrosstermBackend<Stdout>>> {
            terminal::enable_raw_mode()?;
            execute!(
                std::io::stdout(),
                terminal::EnterAlternateScreen,
                event::EnableBracketedPaste,
                cursor::Hide
            )?;
            let mut t = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
            t.clear()?;
            Ok(t)
        })();
        match setup {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                restore();
                Err(e.into())
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves raw mode and the alternate screen, shows the cursor. Safe to call twice.
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(
            std::io::stdout(),
            event::DisableBracketedPaste,
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
    }
}
