//! Running as a service: `contrib/formgate.service` passes `systemd-analyze verify`, and `serve`
//! speaks systemd's notify protocol (`Type=notify`) over a real Unix datagram socket; `formgate
//! probe` answers a container's health check.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The unit, with `ExecStart` pointing at the binary under test (verify checks it is there).
#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let Ok(tool) = which("systemd-analyze") else {
        assert!(
            std::env::var("FORMGATE_REQUIRE_SYSTEMD").is_err(),
            "FORMGATE_REQUIRE_SYSTEMD is set but systemd-analyze is missing (apt-get install systemd)"
        );
        eprintln!("skipped: no systemd-analyze");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/formgate.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("ExecStart=/usr/local/bin/formgate "));
    let path = dir.path().join("formgate.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/formgate", env!("CARGO_BIN_EXE_formgate")),
    )
    .unwrap();
    let out = Command::new(tool).arg("verify").arg(&path).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "", "no warnings");
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn serve_tells_systemd_when_it_is_ready_and_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_formgate"))
        .arg("serve")
        .current_dir(dir.path())
        .env("FORMGATE_LISTEN", "127.0.0.1:0")
        .env("FORMGATE_LOG", "warn")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 within 30 s");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means ready: the banner is out and the port answers.
    use std::io::BufRead;
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .unwrap()
        .to_string();
    let health = std::net::TcpStream::connect(&addr).map(|mut s| {
        use std::io::{Read, Write};
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    });
    assert!(health.unwrap().starts_with("HTTP/1.1 200"));
    // What a container's HEALTHCHECK runs: no curl needed.
    let probe = |path: &str| {
        Command::new(env!("CARGO_BIN_EXE_formgate"))
            .args(["probe", path])
            .current_dir(dir.path())
            .env("FORMGATE_LISTEN", &addr)
            .env("FORMGATE_LOG", "warn")
            .output()
            .unwrap()
    };
    assert!(probe("/healthz").status.success());
    let missing = probe("/no-such-page");
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("answered 404"),
        "{missing:?}"
    );

    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let n = socket.recv(&mut buf).expect("STOPPING=1 on SIGTERM");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(child.wait().unwrap().success());
    let gone = probe("/healthz");
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
}
