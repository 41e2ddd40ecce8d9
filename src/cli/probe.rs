//! `formgate probe`: asks a running `serve` whether it is alive, for a container's HEALTHCHECK
//! where no curl exists (`contrib/Containerfile` holds the binary and CA certificates only).
//! Plain HTTP/1.1 over TCP to the listener itself, so a few lines of std rather than a client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// GET `path` on `listen` (a listener bound to all addresses is asked on loopback); exit 0 on a
/// `200`, else 1 with the reason on stderr.
pub fn probe(listen: SocketAddr, path: &str) -> ExitCode {
    let mut target = listen;
    if target.ip().is_unspecified() {
        target.set_ip(if target.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let path = path.as_str();
    match get(target, path) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("formgate probe: http://{target}{path} answered {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("formgate probe: http://{target}{path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn get(target: SocketAddr, path: &str) -> std::io::Result<u16> {
    let timeout = Duration::from_secs(3);
    let mut tcp = TcpStream::connect_timeout(&target, timeout)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let n = tcp.read(&mut head)?;
    // `HTTP/1.1 200 OK`: the status is the second word of the first line.
    std::str::from_utf8(&head[..n])
        .ok()
        .and_then(|h| h.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}
