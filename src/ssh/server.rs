//! The SSH listener and one handler per connection: public-key authentication against
//! `[[moderators]]` and nothing else; a session channel with a pty runs the dashboard, one with
//! a command runs that verb; everything else SSH can ask for (shell without a pty, subsystems
//! such as sftp, port and agent forwarding, X11, environment) is refused.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use super::Moderator;
use crate::actions::UseCases;
use crate::config::Config;
use crate::tui::input::{ESC_WAIT, InputParser};
use crate::tui::remote::SharedSize;
use ratatui::crossterm::event::Event;

/// Sessions one moderator may have open at once (a laptop, a phone, a script).
pub const SESSIONS_PER_MODERATOR: usize = 4;
/// Failed authentications one client address may have per [`FAILURE_WINDOW`]; more and it is
/// disconnected at once until the window ends.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Every rejection takes this long, whichever check failed (russh waits it out).
const REJECTION_TIME: Duration = Duration::from_millis(500);
/// Terminal sizes outside these are taken as the nearest inside.
const COLUMNS: (u32, u32) = (20, 500);
const ROWS: (u32, u32) = (5, 200);

/// What every connection shares.
pub(super) struct Shared {
    pub moderators: Vec<Arc<Moderator>>,
    pub actions: Arc<UseCases>,
    pub config: Arc<Config>,
    pub sessions: Arc<Semaphore>,
    pub per_moderator: Mutex<HashMap<String, usize>>,
    pub failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    pub stop: watch::Receiver<bool>,
}

pub struct SshServer {
    listener: TcpListener,
    config: Arc<russh::server::Config>,
    shared: Arc<Shared>,
}

impl SshServer {
    pub(super) fn new(listener: TcpListener, host_key: PrivateKey, shared: Shared) -> SshServer {
        let config = russh::server::Config {
            methods: only_publickey(),
            auth_rejection_time: REJECTION_TIME,
            // OpenSSH always asks `none` first: answering that at once costs nobody anything.
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![host_key],
            max_auth_attempts: 6,
            inactivity_timeout: Some(shared.config.ssh_idle_timeout),
            nodelay: true,
            ..Default::default()
        };
        SshServer {
            listener,
            config: Arc::new(config),
            shared: Arc::new(shared),
        }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Accepts connections until `stop`; sessions open then end on their own (the dashboard
    /// sees the same stop).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "ssh: cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = async { let _ = stop.wait_for(|s| *s).await; } => return,
            };
            let _ = tcp.set_nodelay(true);
            let handler = Connection {
                shared: self.shared.clone(),
                peer,
                who: None,
                channels: HashMap::new(),
            };
            let config = self.config.clone();
            // `run_stream` reads the client's version line before it returns: never inline here.
            tokio::spawn(async move {
                match russh::server::run_stream(config, tcp, handler).await {
                    Ok(running) => {
                        if let Err(e) = running.await {
                            tracing::debug!(%peer, error = %e, "ssh: connection ended");
                        }
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "ssh: connection failed before it began"),
                }
            });
        }
    }
}

fn only_publickey() -> MethodSet {
    MethodSet::from(&[MethodKind::PublicKey][..])
}

fn refused() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(only_publickey()),
        partial_success: false,
    }
}

/// One SSH connection: who it authenticated as, and its open session channels.
struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    who: Option<Arc<Moderator>>,
    channels: HashMap<ChannelId, Seat>,
}

/// One session channel, and what it holds: a place among `ssh_max_sessions` and among the
/// moderator's own, given back when it closes (or the connection drops).
struct Seat {
    size: Option<SharedSize>,
    input: Option<mpsc::UnboundedSender<Event>>,
    parser: Arc<Mutex<InputParser>>,
    /// Bumped on every input: a pending Esc is flushed only after a quiet [`ESC_WAIT`].
    typed: Arc<AtomicU64>,
    started: bool,
    _place: OwnedSemaphorePermit,
    _own: ModeratorPlace,
}

/// A moderator's count of open sessions, decremented when dropped.
struct ModeratorPlace {
    shared: Arc<Shared>,
    name: String,
}

impl ModeratorPlace {
    /// A place already counted in `per_moderator`; counted in the metrics from here.
    fn taken(shared: Arc<Shared>, name: String) -> ModeratorPlace {
        crate::metrics::metrics().ssh_sessions.inc();
        ModeratorPlace { shared, name }
    }
}

impl Drop for ModeratorPlace {
    fn drop(&mut self) {
        crate::metrics::metrics().ssh_sessions.dec();
        let mut counts = self.shared.per_moderator.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.name) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Connection {
    fn moderator_for(&self, key: &PublicKey) -> Option<Arc<Moderator>> {
        // The key itself, never its comment or the user name the client gave.
        self.shared
            .moderators
            .iter()
            .find(|m| m.keys.iter().any(|k| k.key_data() == key.key_data()))
            .cloned()
    }

    /// Counts a failed attempt; true when this address has failed too often lately.
    fn failed(&self) -> bool {
        let mut failures = self.shared.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        failures.retain(|_, (since, _)| now.duration_since(*since) < FAILURE_WINDOW);
        let entry = failures.entry(self.peer.ip()).or_insert((now, 0));
        entry.1 += 1;
        entry.1 > MAX_FAILURES
    }

    fn throttled(&self) -> bool {
        let failures = self.shared.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .get(&self.peer.ip())
            .is_some_and(|(since, n)| *n > MAX_FAILURES && since.elapsed() < FAILURE_WINDOW)
    }

    /// A shell or exec request: the channel's one program, by the logged-in moderator. None
    /// (refused) on a channel that is not a session of theirs or already runs something.
    fn begin(&mut self, channel: ChannelId, session: &mut Session) -> Result<Option<Arc<Moderator>>, russh::Error> {
        let who = self.who.clone();
        match (who, self.channels.get_mut(&channel)) {
            (Some(who), Some(seat)) if !seat.started => {
                seat.started = true;
                session.channel_success(channel)?;
                Ok(Some(who))
            }
            _ => {
                session.channel_failure(channel)?;
                Ok(None)
            }
        }
    }

    fn refuse(&self, what: &str) -> Result<Auth, russh::Error> {
        if self.failed() {
            tracing::warn!(peer = %self.peer, "ssh: too many failed logins from this address; disconnecting");
            crate::metrics::metrics().ssh_login("throttled");
            return Err(russh::Error::Disconnect);
        }
        tracing::info!(peer = %self.peer, what, "ssh: login refused");
        crate::metrics::metrics().ssh_login("refused");
        Ok(refused())
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        if self.throttled() {
            return Err(russh::Error::Disconnect);
        }
        Ok(refused())
    }

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        self.refuse("password")
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        _user: &str,
        _submethods: &str,
        _response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        self.refuse("keyboard-interactive")
    }

    async fn auth_publickey_offered(&mut self, _user: &str, key: &PublicKey) -> Result<Auth, Self::Error> {
        if self.throttled() {
            return Err(russh::Error::Disconnect);
        }
        match self.moderator_for(key) {
            Some(_) => Ok(Auth::Accept),
            None => self.refuse("an unknown key"),
        }
    }

    async fn auth_publickey(&mut self, _user: &str, key: &PublicKey) -> Result<Auth, Self::Error> {
        // russh has checked the signature: the client holds this key's private half.
        match self.moderator_for(key) {
            Some(m) => {
                tracing::info!(peer = %self.peer, moderator = %m.name, "ssh: moderator logged in");
                crate::metrics::metrics().ssh_login("accepted");
                self.who = Some(m);
                Ok(Auth::Accept)
            }
            None => self.refuse("an unknown key"),
        }
    }

    async fn auth_openssh_certificate(
        &mut self,
        _user: &str,
        _certificate: &russh::keys::Certificate,
    ) -> Result<Auth, Self::Error> {
        self.refuse("a certificate")
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let id = channel.id();
        // Driven through the session's handle; a Channel kept and never read would stall it.
        drop(channel);
        let Some(who) = self.who.clone() else {
            reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        };
        let Ok(place) = self.shared.sessions.clone().try_acquire_owned() else {
            tracing::warn!(moderator = %who.name, "ssh: ssh_max_sessions reached; session refused");
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        let has_room = {
            let mut counts = self.shared.per_moderator.lock().unwrap_or_else(|e| e.into_inner());
            let n = counts.entry(who.name.clone()).or_insert(0);
            let room = *n < SESSIONS_PER_MODERATOR;
            if room {
                *n += 1;
            }
            room
        };
        if !has_room {
            tracing::warn!(moderator = %who.name, "ssh: this moderator has too many sessions open; refused");
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.channels.insert(
            id,
            Seat {
                size: None,
                input: None,
                parser: Arc::default(),
                typed: Arc::default(),
                started: false,
                _place: place,
                _own: ModeratorPlace::taken(self.shared.clone(), who.name.clone()),
            },
        );
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        columns: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get_mut(&channel) {
            Some(seat) if !seat.started => {
                let (w, h) = clamp(columns, rows);
                seat.size = Some(SharedSize::new(w, h));
                session.channel_success(channel)
            }
            _ => session.channel_failure(channel),
        }
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        columns: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(seat) = self.channels.get(&channel) {
            let (w, h) = clamp(columns, rows);
            if let Some(size) = &seat.size {
                // Before the event: the terminal reads its new size while handling it.
                size.set(w, h);
            }
            if let Some(input) = &seat.input {
                let _ = input.send(Event::Resize(w, h));
            }
        }
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        let Some(who) = self.begin(channel, session)? else {
            return Ok(());
        };
        let Some(seat) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        let Some(size) = seat.size.clone() else {
            // No pty: nothing to draw on. Say how to connect, and close.
            session.data(channel, super::text::NEEDS_A_TERMINAL)?;
            session.exit_status_request(channel, 1)?;
            session.eof(channel)?;
            return session.close(channel);
        };
        let (tx, rx) = mpsc::unbounded_channel();
        seat.input = Some(tx);
        tokio::spawn(super::channel::dashboard(
            session.handle(),
            channel,
            size,
            rx,
            self.shared.actions.clone(),
            who,
            super::channel::Until {
                stop: self.shared.stop.clone(),
                typed: seat.typed.clone(),
                idle: self.shared.config.ssh_idle_timeout,
            },
        ));
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(who) = self.begin(channel, session)? else {
            return Ok(());
        };
        let command = String::from_utf8_lossy(data).into_owned();
        tokio::spawn(super::channel::verb(
            session.handle(),
            channel,
            command,
            self.shared.clone(),
            who,
        ));
        Ok(())
    }

    async fn data(&mut self, channel: ChannelId, data: &[u8], _session: &mut Session) -> Result<(), Self::Error> {
        let Some(seat) = self.channels.get(&channel) else {
            return Ok(());
        };
        let Some(input) = seat.input.clone() else { return Ok(()) };
        let waiting = {
            let mut parser = seat.parser.lock().unwrap_or_else(|e| e.into_inner());
            for event in parser.feed(data) {
                let _ = input.send(event);
            }
            parser.waiting()
        };
        let typed = seat.typed.fetch_add(1, Ordering::SeqCst) + 1;
        if waiting {
            // An Esc with nothing after it yet: the Esc key, unless more comes at once.
            let (parser, counter) = (seat.parser.clone(), seat.typed.clone());
            tokio::spawn(async move {
                tokio::time::sleep(ESC_WAIT).await;
                if counter.load(Ordering::SeqCst) == typed {
                    let flushed = parser.lock().unwrap_or_else(|e| e.into_inner()).flush();
                    if let Some(event) = flushed {
                        let _ = input.send(event);
                    }
                }
            });
        }
        Ok(())
    }

    async fn channel_eof(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        if let Some(seat) = self.channels.get_mut(&channel) {
            seat.input = None; // the dashboard sees its input end and quits
        }
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(peer = %self.peer, subsystem = name, "ssh: subsystem refused");
        session.channel_failure(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _protocol: &str,
        _cookie: &str,
        _screen: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn agent_request(&mut self, _channel: ChannelId, _session: &mut Session) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn streamlocal_forward(&mut self, _path: &str, _session: &mut Session) -> Result<bool, Self::Error> {
        Ok(false)
    }
}

/// A reported terminal size, kept within what the dashboard can sensibly draw.
fn clamp(columns: u32, rows: u32) -> (u16, u16) {
    let w = columns.clamp(COLUMNS.0, COLUMNS.1);
    let h = rows.clamp(ROWS.0, ROWS.1);
    (
        u16::try_from(w).unwrap_or(u16::MAX),
        u16::try_from(h).unwrap_or(u16::MAX),
    )
}
