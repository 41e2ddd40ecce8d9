#!/usr/bin/env python3
"""Times `formgate tui` with 100 000 messages in a pseudo-terminal (benches/run.sh, step 7).

    tui_probe.py FORMGATE_BIN WORK_DIR SECRET_KEY   → one JSON object on stdout

Seeds a fresh SQLite database (schema by `formgate migrate`, rows by SQL), starts the dashboard
in a 120×40 pty and reads what it draws:
- first full frame: from the start until the newest message's name is on screen and the output
  has then been quiet for 50 ms (the time of the last byte of that burst is taken);
- key press: `j` (next row) 30 times; from the write until the last byte of the redraw;
- RSS: VmHWM of the dashboard process at the end.

Then the same dashboard over SSH (`ssh_listen`): `formgate serve` on the same database, 10 real
OpenSSH clients (`ssh -tt`, each in its own 120×40 pty) logged in at once, and `j` pressed 30
times in each, in turn: from the write into the client's pty until the last byte of the redraw
the client prints, so the figure includes both ends of the SSH connection (median and p99 of 300
presses). Skipped (ssh_na) without ssh/ssh-keygen.
"""

import fcntl
import json
import os
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import termios
import time

N = 100_000
NEWEST = f"V{N}x"  # the newest message's name: short, so no column cuts it


def seed(binary, work, key):
    db = os.path.join(work, "tui.db")
    env = dict(os.environ, FORMGATE_DATABASE_URL=f"sqlite://{db}", FORMGATE_SECRET_KEYS=key)
    subprocess.run([binary, "migrate"], env=env, cwd=work, check=True, stdout=subprocess.DEVNULL)
    now = int(time.time())
    sql = f"""
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {N})
    INSERT INTO messages (status, name, email, subject, body, created_at, updated_at, nonce, verify_expires_at,
                          verified_at)
    SELECT CASE i % 4 WHEN 0 THEN 'pending' ELSE 'verified' END, 'V' || i || 'x',
           'visitor' || i || '@example.org', 'Question number ' || i,
           'Hello, I would like to know more about your product. This is message ' || i || '.',
           {now} - ({N} - i) * 60, {now} - ({N} - i) * 60, 'nonce' || i, {now} + 259200,
           CASE i % 4 WHEN 0 THEN NULL ELSE {now} - ({N} - i) * 60 END
    FROM n;"""
    subprocess.run(["sqlite3", db], input=sql, text=True, check=True)
    return env


SESSIONS = 10


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn_in_pty(argv, env, cwd):
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execvpe(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    return pid, fd


def over_ssh(binary, work, env):
    """Key press → frame over SSH with SESSIONS sessions open: {ssh_key_p50_ms, ssh_key_p99_ms}."""
    import shutil
    if not (shutil.which("ssh") and shutil.which("ssh-keygen")):
        return {"ssh_na": "n/a (no OpenSSH client)"}
    # One moderator per session: a moderator may have only a few sessions open at once.
    keys, entries = [], []
    for i in range(SESSIONS):
        key = os.path.join(work, f"bench_ed25519_{i}")
        for f in (key, key + ".pub"):
            if os.path.exists(f):
                os.remove(f)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        public = open(key + ".pub").read().strip()
        keys.append(key)
        entries.append(f'[[moderators]]\nname = "bench{i}"\nkeys = ["{public}"]\n')
    conf = os.path.join(work, "ssh-bench.toml")
    with open(conf, "w") as f:
        f.write("\n".join(entries))
    port = free_port()
    serve_env = dict(env, FORMGATE_LISTEN=f"127.0.0.1:{free_port()}", FORMGATE_SSH_LISTEN=f"127.0.0.1:{port}",
                     FORMGATE_SSH_HOST_KEY_FILE=os.path.join(work, "bench_host_key"), FORMGATE_LOG="warn",
                     FORMGATE_MAIL_DIR=os.path.join(work, "bench-mail"))
    serve = subprocess.Popen([binary, "--config", conf, "serve"], env=serve_env, cwd=work,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sessions = []
    try:
        import socket
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    return {"ssh_na": "n/a (serve did not listen for SSH)"}
                time.sleep(0.05)
        client_env = dict(os.environ, TERM="xterm-256color")
        for key in keys:
            argv = ["ssh", "-tt", "-p", str(port), "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                    "127.0.0.1"]
            sessions.append(spawn_in_pty(argv, client_env, work))
        for _, fd in sessions:
            buf, last = read_burst(fd, 0.05, time.monotonic() + 20, until=NEWEST.encode())
            if last is None or NEWEST.encode() not in buf:
                return {"ssh_na": "n/a (an SSH session never showed the newest message)"}
        presses = []
        for _ in range(30):
            for _, fd in sessions:
                t = time.monotonic()
                os.write(fd, b"j")
                _, last = read_burst(fd, 0.03, t + 2)
                if last is not None:
                    presses.append((last - t) * 1000)
        presses.sort()
        return {
            "ssh_sessions": SESSIONS,
            "ssh_key_p50_ms": round(statistics.median(presses), 2),
            "ssh_key_p99_ms": round(presses[min(len(presses) - 1, int(len(presses) * 0.99))], 2),
        }
    finally:
        for pid, fd in sessions:
            try:
                os.write(fd, b"q")
            except OSError:
                pass
        time.sleep(0.3)
        for pid, _ in sessions:
            reap(pid)
        serve.terminate()
        try:
            serve.wait(10)
        except subprocess.TimeoutExpired:
            serve.kill()


def read_burst(fd, quiet, deadline, until=None):
    """Reads until `until` (bytes) was seen and then nothing came for `quiet` s. Returns (seen, time of last byte)."""
    buf, last = b"", None
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], quiet)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            if b"\x1b[6n" in chunk:  # "where is the cursor?", as a terminal would answer it
                os.write(fd, b"\x1b[1;1R")
            buf += chunk
            last = time.monotonic()
        elif last is not None and (until is None or until in buf):
            return buf, last
    return buf, last


def main():
    binary, work, key = sys.argv[1:4]
    env = seed(binary, work, key)
    env["TERM"] = "xterm-256color"
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(work)
        os.execve(binary, [binary, "tui"], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    start = time.monotonic()
    try:
        buf, last = read_burst(fd, 0.05, start + 10, until=NEWEST.encode())
        if last is None or NEWEST.encode() not in buf:
            with open(os.path.join(work, "tui-screen.bin"), "wb") as f:
                f.write(buf)
            print(json.dumps({"na": "n/a (the dashboard never showed the newest message; see tui-screen.bin)"}))
            return 0
        first = (last - start) * 1000
        presses = []
        for _ in range(30):
            t = time.monotonic()
            os.write(fd, b"j")
            _, last = read_burst(fd, 0.03, t + 2)
            if last is not None:
                presses.append((last - t) * 1000)
        with open(f"/proc/{pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        local = {
            "first_frame_ms": round(first, 1),
            "key_p50_ms": round(statistics.median(presses), 2) if presses else None,
            "key_max_ms": round(max(presses), 2) if presses else None,
            "rss_mb": round(hwm / 1024, 1),
        }
    finally:
        try:
            os.write(fd, b"q")
            time.sleep(0.2)
        except OSError:
            pass
        reap(pid)
    local.update(over_ssh(binary, work, env))
    print(json.dumps(local))
    return 0


def reap(pid):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        for _ in range(50):
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
            time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
