#!/usr/bin/env python3
"""The fault soak behind scripts/faults.sh: formgate's release binary against a real SMTP server
with failure modes (in this process, over TCP), real kills, real HTTP load, 127.0.0.1 only. Each
scenario is bounded in posts and seconds; the table at the end says what was accepted, what was
delivered, what was lost (never anything, or the scenario failed) and how long recovery took.

    faults.py BINARY WORKDIR [--only NAME ...]

Exit 0 when every scenario held, 1 when one lost something (its row says which).
"""

import argparse
import http.client
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

KEY = "faults-soak-signing-key-0123456789abcdefghijklmnop"
PG_ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAtc"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# The SMTP server and its failure modes.


class FaultSmtp:
    """Accepts mail over SMTP; `mode` says how it misbehaves:
    accept · down (port closed) · reject451 (a share of DATA gets 451) · drop (every mail's first
    DATA gets no reply, its connection closed) · hang (the next `hangs` DATA ends never answered) ·
    slow (each DATA end answered after `delay` seconds)."""

    def __init__(self):
        self.port = free_port()
        self.lock = threading.Lock()
        self.mode = "accept"
        self.share = 0.0
        self.hangs = 0
        self.delay = 0.0
        self.accepted = []  # (time, message-id, rcpt)
        self.dropped = set()
        self.listener = None
        self.conns = set()
        self.up()

    def set(self, mode, **kw):
        with self.lock:
            self.mode = mode
            self.share = kw.get("share", 0.0)
            self.hangs = kw.get("hangs", 0)
            self.delay = kw.get("delay", 0.0)
        if mode == "down":
            self.down()
        elif self.listener is None:
            self.up()

    def up(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self.listener = s
        threading.Thread(target=self.accept_loop, args=(s,), daemon=True).start()

    def down(self):
        s, self.listener = self.listener, None
        if s:
            s.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def accept_loop(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            with self.lock:
                self.conns.add(c)
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def delivered(self):
        with self.lock:
            return list(self.accepted)

    def session(self, c):
        f = c.makefile("rb")
        send = lambda line: c.sendall(line.encode() + b"\r\n")
        try:
            send("220 faults ESMTP")
            rcpt = []
            while True:
                line = f.readline()
                if not line:
                    return
                verb = line[:4].decode(errors="replace").upper()
                if verb in ("EHLO", "HELO"):
                    send("250-faults\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760")
                elif verb == "MAIL":
                    rcpt = []
                    send("250 OK")
                elif verb == "RCPT":
                    rcpt.append(line.decode(errors="replace").split(":", 1)[1].strip().strip("<>"))
                    send("250 OK")
                elif verb == "DATA":
                    send("354 go ahead")
                    data = []
                    while True:
                        l = f.readline()
                        if not l or l in (b".\r\n", b".\n"):
                            break
                        data.append(l)
                    if not l:
                        return
                    text = b"".join(data).decode(errors="replace")
                    m = re.search(r"(?im)^message-id:\s*(\S+)", text)
                    mid = m.group(1) if m else f"(none-{time.time()})"
                    with self.lock:
                        mode, share, delay = self.mode, self.share, self.delay
                        hang = mode == "hang" and self.hangs > 0
                        if hang:
                            self.hangs -= 1
                        drop = mode == "drop" and mid not in self.dropped
                        if drop:
                            self.dropped.add(mid)
                    if hang:
                        while f.readline():
                            pass  # never answer; the client gives up and closes
                        return
                    if drop:
                        return  # the mail arrived, its 250 never does
                    if mode == "reject451" and random.random() < share:
                        send("451 4.3.0 try again later")
                        continue
                    if mode == "slow":
                        time.sleep(delay)
                    # Accepted once the data is in: a client killed now never hears the 250.
                    with self.lock:
                        for r in rcpt:
                            self.accepted.append((time.monotonic(), mid, r))
                    send("250 OK queued")
                elif verb == "RSET" or verb == "NOOP":
                    send("250 OK")
                elif verb == "QUIT":
                    send("221 bye")
                    return
                else:
                    send("502 unknown")
        except OSError:
            pass
        finally:
            with self.lock:
                self.conns.discard(c)
            try:
                c.close()
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# formgate processes, posts and load.


class Formgate:
    def __init__(self, binary, workdir, database_url, smtp, extra=None):
        self.binary, self.dir, self.port = binary, workdir, free_port()
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "FORMGATE_LISTEN": f"127.0.0.1:{self.port}",
            "FORMGATE_DATABASE_URL": database_url,
            "FORMGATE_SECRET_KEYS": KEY,
            "FORMGATE_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
            "FORMGATE_RATE_LIMIT_CONTACT": "0",
            "FORMGATE_VERIFY_MAILS_PER_ADDRESS": "0",
            "FORMGATE_MAX_MAILS_PER_HOUR": "0",
            "FORMGATE_LOG": "warn",
        }
        self.env.update(extra or {})
        self.proc = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        self.log = open(os.path.join(self.dir, "serve.log"), "ab")
        self.spawned_at = time.monotonic()
        self.proc = subprocess.Popen([self.binary, "serve"], cwd=self.dir, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"formgate did not start: see {self.dir}/serve.log")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=60):
        return self.proc.wait(timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def post_one(conn, email):
    body = urllib.parse.urlencode({"name": "Soak", "email": email, "message": "Fault soak: hello"})
    conn.request("POST", "/contact", body, {"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    r.read()
    return r.status


def post_many(port, emails, connections=8):
    """Posts each address once; returns the addresses acknowledged (303)."""
    acked, lock = [], threading.Lock()

    def run(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for e in emails[k::connections]:
            if post_one(conn, e) == 303:
                with lock:
                    acked.append(e)

    ts = [threading.Thread(target=run, args=(k,)) for k in range(connections)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return acked


class Load:
    """Posts as fast as `connections` kept-alive connections allow until stopped, recording every
    request begun (its bytes sent) and how it ended: acknowledged, refused, or no answer."""

    def __init__(self, port, prefix, connections=8):
        self.port, self.prefix, self.n = port, prefix, connections
        self.stop_at = None
        self.results = []  # (begun, email, status or exception name)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(k,), daemon=True) for k in range(connections)]
        for t in self.threads:
            t.start()

    def run(self, k):
        i = 0
        conn = None
        while self.stop_at is None or time.monotonic() < self.stop_at:
            if conn is None:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    conn.connect()
                except OSError:
                    conn = None
                    if self.stop_at is not None:
                        return
                    time.sleep(0.01)
                    continue
            email = f"{self.prefix}-{k}-{i}@example.org"
            i += 1
            begun = time.monotonic()
            try:
                outcome = post_one(conn, email)
            except (OSError, http.client.HTTPException) as e:
                outcome = type(e).__name__
                conn.close()
                conn = None
            with self.lock:
                self.results.append((begun, email, outcome))

    def finish(self, after=2.0):
        self.stop_at = time.monotonic() + after
        for t in self.threads:
            t.join(60)
        return self.results


def wait_until(cond, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def arrivals(smtp, emails):
    """Per address: how many times its mail arrived (one verification mail each)."""
    want = set(emails)
    seen = {}
    for _, mid, rcpt in smtp.delivered():
        if rcpt in want:
            seen.setdefault(rcpt, []).append(mid)
    return seen


def last_arrival(smtp, emails):
    want = set(emails)
    times = [t for t, _, r in smtp.delivered() if r in want]
    return max(times) if times else None


# ---------------------------------------------------------------------------------------------
# The scenarios. Each returns (what, figures, held).


def sqlite_url(d):
    return f"sqlite://{d}/formgate.db"


def fault_for_a_while(ctx, name, posts, seconds, mode, **kw):
    """`posts` posts arrive while the SMTP server is in `mode` for `seconds`, then it behaves.
    Returns the acknowledged addresses, their arrivals, and when the last one arrived counted
    from the end of the fault (None: none did)."""
    smtp = FaultSmtp()
    d = ctx.dir(name)
    fg = Formgate(ctx.binary, d, sqlite_url(d), smtp).start()
    try:
        smtp.set(mode, **kw)
        t0 = time.monotonic()
        acked = post_many(fg.port, [f"{name}-{i}@example.org" for i in range(posts)])
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        smtp.set("accept")
        end = time.monotonic()
        wait_until(lambda: len(arrivals(smtp, acked)) == len(acked), 150)
        last = last_arrival(smtp, acked)
        return acked, arrivals(smtp, acked), (last - end if last else None)
    finally:
        fg.stop()


def scenario_outage(ctx, posts=300, outage=20.0):
    acked, got, after = fault_for_a_while(ctx, "outage", posts, outage, "down")
    last = f"{after:.0f} s after it came back" if after is not None else "never"
    return (f"SMTP down {outage:.0f} s while {posts} posts arrive",
            f"{len(acked)}/{posts} acknowledged, {len(got)}/{len(acked)} delivered, last {last}",
            len(acked) == posts and len(got) == len(acked))


def scenario_451(ctx, posts=200, storm=45.0):
    acked, got, after = fault_for_a_while(ctx, "storm", posts, storm, "reject451", share=0.3)
    dups = sum(len(v) - 1 for v in got.values())
    last = f"{after:.0f} s after the storm" if after is not None else "never"
    return (f"451 to 30% of DATA for {storm:.0f} s, {posts} posts",
            f"{len(got)}/{len(acked)} delivered, {dups} twice, last {last}",
            len(acked) == posts and len(got) == len(acked))


def scenario_drop(ctx, posts=100):
    smtp = FaultSmtp()
    d = ctx.dir("drop")
    fg = Formgate(ctx.binary, d, sqlite_url(d), smtp).start()
    try:
        smtp.set("drop")
        emails = [f"drop-{i}@example.org" for i in range(posts)]
        acked = post_many(fg.port, emails)
        wait_until(lambda: len(arrivals(smtp, acked)) == len(acked), 120)
        got = arrivals(smtp, acked)
        # Every first DATA was dropped unanswered: the retry is a second copy, and must carry the
        # first one's Message-ID so the receiving side can fold them.
        same_id = sum(1 for v in got.values() if len(set(v)) == 1)
        return (f"connection dropped after every mail's first DATA, {posts} posts",
                f"{len(got)}/{len(acked)} delivered; {len(smtp.dropped)} dropped and sent again, "
                f"{same_id}/{len(got)} with one Message-ID",
                len(got) == len(acked) == posts and same_id == len(got))
    finally:
        fg.stop()


def scenario_hang(ctx, posts=40):
    smtp = FaultSmtp()
    d = ctx.dir("hang")
    fg = Formgate(ctx.binary, d, sqlite_url(d), smtp, {"FORMGATE_SMTP_TIMEOUT": "15s"}).start()
    try:
        smtp.set("hang", hangs=1)
        first = post_many(fg.port, ["hang-first@example.org"], connections=1)
        time.sleep(0.5)  # its DATA is now unanswered
        t0 = time.monotonic()
        emails = [f"hang-{i}@example.org" for i in range(posts)]
        acked = post_many(fg.port, emails)
        wait_until(lambda: len(arrivals(smtp, acked)) == len(acked), 10)
        during = arrivals(smtp, acked)
        last = last_arrival(smtp, acked)
        wait_until(lambda: len(arrivals(smtp, first)) == 1, 120)
        hung = last_arrival(smtp, first)
        return (f"one connection hangs after DATA (smtp_timeout 15 s), {posts} posts meanwhile",
                f"{len(during)}/{len(acked)} delivered within {(last - t0) * 1000:.0f} ms while it hung; "
                f"the hung mail {'delivered ' + format(hung - t0, '.0f') + ' s later' if hung else 'LOST'}",
                len(during) == len(acked) == posts and hung is not None)
    finally:
        fg.stop()


def scenario_kill_mid_send(ctx, rounds=3, posts=60):
    smtp = FaultSmtp()
    d = ctx.dir("kill-send")
    url = sqlite_url(d)
    fg = Formgate(ctx.binary, d, url, smtp).start()
    figures, held = [], True
    try:
        for r in range(rounds):
            smtp.set("slow", delay=0.25)
            emails = [f"kill{r}-{i}@example.org" for i in range(posts)]
            acked = post_many(fg.port, emails)
            wait_until(lambda: len(arrivals(smtp, acked)) >= posts // 4, 30, 0.02)
            before = len(arrivals(smtp, acked))
            fg.signal(signal.SIGKILL)
            fg.wait()
            smtp.set("accept")
            fg = Formgate(ctx.binary, d, url, smtp).start()
            restarted = fg.spawned_at
            wait_until(lambda: len(arrivals(smtp, acked)) == len(acked), 120)
            got = arrivals(smtp, acked)
            dups = sum(len(v) - 1 for v in got.values())
            last = last_arrival(smtp, acked)
            took = f"{(last - restarted) * 1000:.0f} ms" if last else "never"
            figures.append(f"round {r + 1}: {len(got)}/{len(acked)} delivered ({before} before the kill), "
                           f"{dups} twice, the last {took} after the restart")
            held &= len(acked) == posts and len(got) == len(acked)
        return (f"kill -9 mid-send ({rounds} rounds of {posts}, 4 lanes, 250 ms replies), restart",
                "; ".join(figures), held)
    finally:
        fg.stop()


def stored_sqlite(db, emails):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    have = {row[0] for row in conn.execute("SELECT email FROM messages")}
    check = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    return sum(1 for e in emails if e in have), check


def signal_under_load(ctx, name, sig, seconds):
    """HTTP load for `seconds`, then `sig`. Returns when it was sent, every request's
    (begun, address, outcome), the exit code and the database file."""
    d = ctx.dir(name)
    fg = Formgate(ctx.binary, d, sqlite_url(d), FaultSmtp()).start()
    load = Load(fg.port, name)
    time.sleep(seconds)
    signalled = time.monotonic()
    fg.signal(sig)
    code = fg.wait()
    return signalled, load.finish(after=0.3), code, f"{d}/formgate.db"


def scenario_kill_under_load(ctx, seconds=4.0):
    _, results, _, db = signal_under_load(ctx, "kill-load", signal.SIGKILL, seconds)
    acked = [e for _, e, s in results if s == 303]
    stored, check = stored_sqlite(db, acked)
    return (f"kill -9 under HTTP load (8 connections, {seconds:.0f} s)",
            f"{stored}/{len(acked)} acknowledged posts stored, integrity_check {check}",
            stored == len(acked) > 0 and check == "ok")


def scenario_term_under_load(ctx, seconds=4.0):
    signalled, results, code, db = signal_under_load(ctx, "term-load", signal.SIGTERM, seconds)
    begun = [(e, s) for b, e, s in results if b < signalled]
    answered = [e for e, s in begun if isinstance(s, int)]
    unanswered = len(begun) - len(answered)
    acked = [e for e, s in begun if s == 303]
    stored, check = stored_sqlite(db, acked)
    return (f"SIGTERM under HTTP load (8 connections, {seconds:.0f} s)",
            f"{len(answered)}/{len(begun)} requests begun before the signal answered ({unanswered} reset); "
            f"{stored}/{len(acked)} acknowledged stored; exit {code}",
            unanswered == 0 and stored == len(acked) and code == 0)


def scenario_two_postgres(ctx, posts=100):
    name = f"formgate_faults_{os.getpid()}"
    try:
        subprocess.run(PG_ADMIN + [f"CREATE DATABASE {name}"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        return ("two PostgreSQL instances, one killed mid-send", f"skipped: no PostgreSQL ({e})", None)
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    smtp = FaultSmtp()
    a = Formgate(ctx.binary, ctx.dir("pg-a"), url, smtp).start()
    b = Formgate(ctx.binary, ctx.dir("pg-b"), url, smtp).start()
    try:
        smtp.set("slow", delay=0.25)
        emails_a = [f"pga-{i}@example.org" for i in range(posts)]
        emails_b = [f"pgb-{i}@example.org" for i in range(posts)]
        acked = post_many(a.port, emails_a) + post_many(b.port, emails_b)
        wait_until(lambda: len(arrivals(smtp, acked)) >= posts // 2, 30, 0.02)
        a.signal(signal.SIGKILL)
        a.wait()
        killed = time.monotonic()
        smtp.set("accept")
        wait_until(lambda: len(arrivals(smtp, acked)) == len(acked), 120)
        got = arrivals(smtp, acked)
        dups = sum(len(v) - 1 for v in got.values())
        last = last_arrival(smtp, acked)
        return (f"two instances on one PostgreSQL, one killed mid-send, {2 * posts} posts",
                f"the survivor delivered {len(got)}/{len(acked)}, {dups} twice, "
                f"last {last - killed:.0f} s after the kill" if last else "none delivered",
                len(acked) == 2 * posts and len(got) == len(acked))
    finally:
        a.stop()
        b.stop()
        subprocess.run(PG_ADMIN + [f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)


SCENARIOS = {
    "outage": scenario_outage,
    "451": scenario_451,
    "drop": scenario_drop,
    "hang": scenario_hang,
    "kill-send": scenario_kill_mid_send,
    "kill-load": scenario_kill_under_load,
    "term-load": scenario_term_under_load,
    "postgres": scenario_two_postgres,
}


class Context:
    def __init__(self, binary, workdir):
        self.binary, self.workdir = binary, workdir

    def dir(self, name):
        d = os.path.join(self.workdir, name)
        os.makedirs(d, exist_ok=True)
        return d


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("workdir")
    p.add_argument("--only", nargs="*")
    a = p.parse_args()
    ctx = Context(os.path.realpath(a.binary), a.workdir)
    rows, ok = [], True
    started = time.monotonic()
    for name, run in SCENARIOS.items():
        if a.only and name not in a.only:
            continue
        t0 = time.monotonic()
        try:
            what, figures, held = run(ctx)
        except Exception as e:  # a scenario that broke is a failed row, not a lost table
            what, figures, held = name, f"broke: {type(e).__name__}: {e}", False
        took = time.monotonic() - t0
        verdict = {True: "holds", False: "FAILS", None: "skipped"}[held]
        print(f"[{name}] {verdict} in {took:.0f} s: {figures}", file=sys.stderr, flush=True)
        rows.append((what, figures, verdict, took))
        ok &= held is not False
    print("| fault | what happened | verdict | seconds |")
    print("|---|---|---|---|")
    for what, figures, verdict, took in rows:
        print(f"| {what} | {figures} | {verdict} | {took:.0f} |")
    print(f"\n{time.monotonic() - started:.0f} s in all")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
