//! The listener: accepts connections and serves the router on each with hyper's HTTP/1, with a
//! deadline for a request's headers. `axum::serve` starts hyper without a timer, and without one
//! hyper has no header deadline: a client sending its headers a byte a minute (slowloris) holds a
//! connection and its task for as long as it likes, and a few thousand of them exhaust the file
//! descriptors the real visitors need. The body has its own deadline (`body_timeout`, in the
//! `Submission` extractor); an idle kept-alive connection waits for its next request's headers,
//! so it is closed after `header_timeout` too.
//!
//! Shutdown: stop accepting (taking first the connections already waiting in the backlog, which
//! closing the listener would reset), let every connection finish the request it is serving or
//! receive the first one its client has sent (idle kept-alive ones close at once), then return.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` resolves and the connections are through.
/// Handlers see the client's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    // Every connection task holds a receiver: `closed()` resolves when the last one has ended.
    let (open_tx, open_rx) = watch::channel(());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let spawn = |tcp: tokio::net::TcpStream, remote: std::net::SocketAddr| {
        tokio::spawn(connection(
            tcp,
            remote,
            router.clone(),
            header_timeout,
            stop_rx.clone(),
            open_rx.clone(),
        ));
    };
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, say: waiting lets connections close first.
                    tracing::error!(error = %e, "cannot accept connections; retrying in a second");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        spawn(tcp, remote);
    }
    // Connections the kernel completed but nobody accepted yet would be reset with the listener:
    // their clients have sent a request and get an answer like the rest. (A zero timeout still
    // polls `accept` once: it takes what is ready and never waits.)
    while let Ok(accepted) = tokio::time::timeout(Duration::ZERO, listener.accept()).await {
        match accepted {
            Ok((tcp, remote)) => spawn(tcp, remote),
            Err(e) if is_per_connection(&e) => {}
            Err(_) => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// How long, at shutdown, a connection that has not yet sent a whole request's headers is given
/// to do so: a client that connected just before the signal has its request on the way.
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(500);

/// Serves one connection until it ends; on `stop`, finishes the request it is serving (or waits
/// briefly for the one its client has just sent) and closes.
async fn connection(
    tcp: tokio::net::TcpStream,
    remote: std::net::SocketAddr,
    router: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    open: watch::Receiver<()>,
) {
    // Answers are small and written at once: do not hold them back for more data.
    let _ = tcp.set_nodelay(true);
    let requests = Arc::new(Notify::new());
    let begun = Arc::new(AtomicBool::new(false));
    let (on_request, seen) = (requests.clone(), begun.clone());
    let service = service_fn(move |mut request: Request<Incoming>| {
        seen.store(true, Ordering::Release);
        on_request.notify_one();
        request.extensions_mut().insert(ConnectInfo(remote));
        router.clone().oneshot(request.map(Body::new))
    });
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let connection = http.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        // (the watch's guard dropped at once: it must not live across the await below)
        () = async { drop(stop.wait_for(|stop| *stop).await) } => {
            // Closing a connection whose first request is still unread would reset it: hyper
            // takes a connection with nothing parsed yet for idle.
            if !begun.load(Ordering::Acquire) {
                let first = tokio::time::timeout(FIRST_REQUEST_GRACE, requests.notified());
                tokio::select! {
                    ended = connection.as_mut() => {
                        finish(ended, remote);
                        drop(open);
                        return;
                    }
                    _ = first => {}
                }
            }
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    finish(ended, remote);
    drop(open);
}

fn finish(ended: Result<(), hyper::Error>, remote: std::net::SocketAddr) {
    if let Err(e) = ended {
        // A client that went away or was too slow: nothing the operator can act on.
        tracing::debug!(client = %remote, error = %e, "connection ended with an error");
    }
}

/// Errors that concern one connection (it was reset before we took it), not the listener.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}
