//! Tells systemd how `serve` is doing (`Type=notify` in `contrib/formgate.service`): `READY=1`
//! once the port is bound, the database migrated and the workers about to start, so units
//! ordered after formgate (and `systemctl start` itself) wait for a formgate that answers, not
//! for a process that exists; `STOPPING=1` when shutdown begins. Without `NOTIFY_SOCKET` (not
//! under systemd) nothing is sent. The protocol is one datagram on a Unix socket, so a few lines
//! here rather than a crate.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `READY=1`) to the service manager, if there is one. Failing to tell it is
/// logged and otherwise ignored: systemd then times the start out itself, which says enough.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            // An abstract socket: Linux's namespace without a file.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(state.as_bytes(), &addr)
            }
            None => socket.send_to(state.as_bytes(), &path),
        }
    });
    if let Err(e) = sent {
        tracing::warn!(error = %e, state, "cannot notify systemd");
    }
}
