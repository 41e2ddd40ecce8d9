//! An in-process SMTP server over real TCP, for integration tests.
//!
//! It speaks just enough SMTP for lettre (or any well-behaved client):
//! EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT. No AUTH, no STARTTLS, and
//! PIPELINING is deliberately *not* advertised so clients go command by command.
//! Accepted mails are recorded and can be inspected with the `ReceivedMail` helpers;
//! `Behaviour` switches the server into rejecting or hanging to exercise error paths.

// Each test binary uses a different subset of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mailparse::{DispositionType, MailHeaderMap, ParsedMail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// One mail the server accepted (answered 250 to the end of DATA).
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// Dot-unstuffed message, CRLF line endings, without the terminating ".\r\n".
    pub data: Vec<u8>,
}

impl ReceivedMail {
    /// The parsed message; panics if mailparse cannot make sense of it.
    pub fn parsed(&self) -> ParsedMail<'_> {
        mailparse::parse_mail(&self.data).unwrap_or_else(|e| {
            panic!(
                "test SMTP: received mail does not parse: {e}\n--- raw message ---\n{}",
                String::from_utf8_lossy(&self.data)
            )
        })
    }

    /// First top-level header called `name` (case-insensitive), RFC 2047-decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed().headers.get_first_value(name)
    }

    /// All top-level headers in order, as (name, decoded value).
    pub fn headers_all(&self) -> Vec<(String, String)> {
        self.parsed()
            .headers
            .iter()
            .map(|h| (h.get_key(), h.get_value()))
            .collect()
    }

    /// The first non-attachment text/plain part (walking multiparts), with the
    /// transfer encoding and charset undone. Line endings are normalised to "\n"
    /// so tests can compare against literals written with plain newlines.
    /// Panics if there is no text/plain part.
    pub fn text_body(&self) -> String {
        self.body_of("text/plain").unwrap_or_else(|| {
            panic!(
                "test SMTP: mail has no text/plain part\n--- raw message ---\n{}",
                String::from_utf8_lossy(&self.data)
            )
        })
    }

    /// The first non-attachment text/html part, decoded like `text_body`.
    pub fn html_body(&self) -> Option<String> {
        self.body_of("text/html")
    }

    fn body_of(&self, mimetype: &str) -> Option<String> {
        let parsed = self.parsed();
        let part = parsed.parts().find(|p| {
            p.ctype.mimetype.eq_ignore_ascii_case(mimetype)
                && p.get_content_disposition().disposition != DispositionType::Attachment
        })?;
        let body = part
            .get_body()
            .unwrap_or_else(|e| panic!("test SMTP: cannot decode {mimetype} part: {e}"));
        Some(body.replace("\r\n", "\n"))
    }
}

/// How the server answers; switchable at any time with `TestSmtp::set_behaviour`.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Normal, accepting server.
    Accept,
    /// Reply to the end of DATA (the final ".") with this code and text,
    /// e.g. (451, "try later") or (550, "no such user"). The mail is kept apart (`rejected`).
    RejectData(u16, String),
    /// Reply to RCPT TO with this code and text.
    RejectRcpt(u16, String),
    /// Accept the TCP connection and then never answer (to test client timeouts).
    /// Also applies to connections already open, from their next command on.
    Hang,
}

struct State {
    behaviour: Behaviour,
    mails: Vec<ReceivedMail>,
    /// What was sent and refused at the end of DATA (`Behaviour::RejectData`).
    rejected: Vec<ReceivedMail>,
    connections: usize,
    next_queue_id: u64,
    /// So many of the next mails get no answer to the end of their DATA, their connection held
    /// open (`TestSmtp::hang_after_data`).
    hang_after_data: usize,
}

struct Shared {
    state: Mutex<State>,
    /// Number of accepted mails, so `wait_for` can sleep instead of polling.
    mail_count: watch::Sender<usize>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not turn every later call into a second panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn behaviour(&self) -> Behaviour {
        self.lock().behaviour.clone()
    }
}

pub struct TestSmtp {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    /// The accept loop; it owns every connection task. `None` once stopped.
    task: Option<JoinHandle<()>>,
}

impl TestSmtp {
    /// Start a server on 127.0.0.1 with an ephemeral port.
    pub async fn start() -> TestSmtp {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Start a server on `addr`, e.g. the port of a server stopped earlier.
    /// Retries for up to 2 s while the address is still in use.
    pub async fn start_on(addr: SocketAddr) -> TestSmtp {
        let listener = bind_with_retry(addr).await;
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("test SMTP: local_addr failed: {e}"));
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                behaviour: Behaviour::Accept,
                mails: Vec::new(),
                rejected: Vec::new(),
                connections: 0,
                next_queue_id: 1,
                hang_after_data: 0,
            }),
            mail_count: watch::Sender::new(0),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared.clone(), shutdown_rx));
        TestSmtp {
            addr,
            shared,
            shutdown,
            task: Some(task),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// "smtp://127.0.0.1:PORT"
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Takes effect for following commands and connections.
    pub fn set_behaviour(&self, b: Behaviour) {
        self.shared.lock().behaviour = b;
    }

    /// The next `n` mails are read to their end and never answered: each holds its connection
    /// (and the client's lane) until the client gives up. Other connections carry on.
    pub fn hang_after_data(&self, n: usize) {
        self.shared.lock().hang_after_data = n;
    }

    /// Snapshot of accepted mails, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.shared.lock().mails.clone()
    }

    /// Mails refused at the end of DATA, oldest first.
    pub fn rejected(&self) -> Vec<ReceivedMail> {
        self.shared.lock().rejected.clone()
    }

    pub fn count(&self) -> usize {
        self.shared.lock().mails.len()
    }

    /// Wait until at least `n` mails have been accepted and return them all.
    /// Panics on timeout, saying how many did arrive.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let mut rx = self.shared.mail_count.subscribe();
        // `wait_for` checks the current value first, so no update can be missed.
        // The borrowed value it yields must be dropped at once: it holds the
        // channel's read lock, which a connection task needs to publish a count.
        let wait = async move { rx.wait_for(|&c| c >= n).await.is_ok() };
        let reached = tokio::time::timeout(timeout, wait).await;
        if reached.is_err() {
            let got = self.received();
            let summary: Vec<String> = got
                .iter()
                .map(|m| format!("from <{}> to {:?}", m.mail_from, m.rcpt_to))
                .collect();
            panic!(
                "test SMTP: timed out after {timeout:?} waiting for {n} mail(s); {} arrived: {summary:?}",
                got.len()
            );
        }
        self.received()
    }

    /// Number of TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Stop listening and close every open connection. When this returns the
    /// port is free and clients see the server as down.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            // The accept loop drops the listener and aborts the connection tasks
            // (dropping their sockets) before finishing.
            let _ = task.await;
        }
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        // Not stopped explicitly: abort the accept loop. Dropping its JoinSet
        // aborts the connection tasks too, so nothing outlives the server handle.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn bind_with_retry(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match try_bind(addr) {
            Ok(l) => return l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("test SMTP: cannot bind {addr}: {e}"),
        }
    }
}

fn try_bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // SO_REUSEADDR lets a restarted server take the port over while connections
    // of the previous one linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            // An error means the sender is gone, which also means stop. The
            // async block drops the (non-Send) borrowed value immediately.
            _ = async { let _ = shutdown.wait_for(|&stop| stop).await; } => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    shared.lock().connections += 1;
                    conns.spawn(handle_connection(stream, shared.clone()));
                }
                // E.g. EMFILE or a connection reset before accept: keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
        // Reap finished connection tasks so the set does not grow without bound.
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    conns.shutdown().await;
}

type Reader = BufReader<OwnedReadHalf>;

/// Serve one connection; any I/O error or EOF simply ends it.
async fn handle_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);

    if matches!(shared.behaviour(), Behaviour::Hang) {
        hang(&mut read).await;
        return;
    }
    let _ = serve(&mut read, &mut write, &shared).await;
}

#[derive(Default)]
struct Transaction {
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

async fn serve(read: &mut Reader, write: &mut OwnedWriteHalf, shared: &Shared) -> std::io::Result<()> {
    reply(write, "220 test ESMTP").await?;
    let mut tx = Transaction::default();

    loop {
        let Some(line) = read_line(read).await? else {
            return Ok(());
        };
        if matches!(shared.behaviour(), Behaviour::Hang) {
            hang(read).await;
            return Ok(());
        }
        let line = String::from_utf8_lossy(&line);
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v, a.trim()),
            None => (line.trim(), ""),
        };

        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                tx = Transaction::default();
                let name = if arg.is_empty() { "client" } else { arg };
                let text = format!("250-test greets {name}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760");
                reply(write, &text).await?;
            }
            "HELO" => {
                tx = Transaction::default();
                reply(write, "250 test").await?;
            }
            "MAIL" => match path_arg(arg, "FROM:") {
                Some(from) => {
                    tx = Transaction {
                        mail_from: Some(from),
                        rcpt_to: Vec::new(),
                    };
                    reply(write, "250 OK").await?;
                }
                None => reply(write, "501 syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" => {
                if tx.mail_from.is_none() {
                    reply(write, "503 need MAIL first").await?;
                    continue;
                }
                let Some(to) = path_arg(arg, "TO:") else {
                    reply(write, "501 syntax: RCPT TO:<address>").await?;
                    continue;
                };
                match shared.behaviour() {
                    Behaviour::RejectRcpt(code, text) => {
                        reply(write, &format!("{code} {text}")).await?;
                    }
                    _ => {
                        tx.rcpt_to.push(to);
                        reply(write, "250 OK").await?;
                    }
                }
            }
            "DATA" => {
                let Some(mail_from) = tx.mail_from.clone() else {
                    reply(write, "503 need MAIL first").await?;
                    continue;
                };
                if tx.rcpt_to.is_empty() {
                    reply(write, "503 need RCPT first").await?;
                    continue;
                }
                reply(write, "354 end data with <CR><LF>.<CR><LF>").await?;
                // EOF inside DATA ends the connection without recording anything.
                let Some(data) = read_data(read).await? else {
                    return Ok(());
                };
                let rcpt_to = std::mem::take(&mut tx.rcpt_to);
                tx = Transaction::default();

                // Decide and record under one lock so behaviour and queue ids stay consistent.
                let answer = {
                    let mut st = shared.lock();
                    let hang_this = st.hang_after_data > 0;
                    st.hang_after_data = st.hang_after_data.saturating_sub(1);
                    match st.behaviour.clone() {
                        _ if hang_this => None,
                        Behaviour::RejectData(code, text) => {
                            st.rejected.push(ReceivedMail {
                                mail_from,
                                rcpt_to,
                                data,
                            });
                            Some(format!("{code} {text}"))
                        }
                        Behaviour::Hang => None,
                        Behaviour::Accept | Behaviour::RejectRcpt(..) => {
                            let id = st.next_queue_id;
                            st.next_queue_id += 1;
                            st.mails.push(ReceivedMail {
                                mail_from,
                                rcpt_to,
                                data,
                            });
                            // Publish while still holding the lock, so the count only ever rises.
                            shared.mail_count.send_replace(st.mails.len());
                            Some(format!("250 OK queued as TEST{id:06}"))
                        }
                    }
                };
                match answer {
                    Some(answer) => reply(write, &answer).await?,
                    None => {
                        hang(read).await;
                        return Ok(());
                    }
                }
            }
            "RSET" => {
                tx = Transaction::default();
                reply(write, "250 OK").await?;
            }
            "NOOP" => reply(write, "250 OK").await?,
            "QUIT" => {
                reply(write, "221 bye").await?;
                return Ok(());
            }
            _ => reply(write, "502 command not implemented").await?,
        }
    }
}

/// Hold the connection open without ever answering; discard input until the client gives up.
async fn hang(read: &mut Reader) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = read.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Send one reply (possibly multi-line, already joined with CRLF) plus the final CRLF.
async fn reply(write: &mut OwnedWriteHalf, text: &str) -> std::io::Result<()> {
    write.write_all(format!("{text}\r\n").as_bytes()).await?;
    write.flush().await
}

/// Read one line without its line ending (CRLF, or a bare LF to be lenient).
/// `Ok(None)` at EOF; a final unterminated fragment counts as EOF too.
async fn read_line(read: &mut Reader) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    read.read_until(b'\n', &mut line).await?;
    if line.last() != Some(&b'\n') {
        return Ok(None);
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

/// Read a DATA body up to the line ".", undoing dot-stuffing and normalising
/// line endings to CRLF. `Ok(None)` if the client goes away first.
async fn read_data(read: &mut Reader) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    loop {
        let Some(line) = read_line(read).await? else {
            return Ok(None);
        };
        if line == b"." {
            return Ok(Some(data));
        }
        // RFC 5321 4.5.2: a leading dot on any other line was added by the client.
        let line = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
    }
}

/// Parse "FROM:<a@b> PARAMS" / "TO:<a@b>" (prefix case-insensitive, optional
/// space after the colon, parameters ignored). Returns the address without brackets.
fn path_arg(arg: &str, prefix: &str) -> Option<String> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        Some(inner[..end].to_string())
    } else {
        // Lenient: a bare address without angle brackets.
        rest.split_whitespace().next().map(str::to_string)
    }
}
