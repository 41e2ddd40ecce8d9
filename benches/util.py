#!/usr/bin/env python3
"""Small helpers for benches/run.sh, one per subcommand.

    util.py free-port
    util.py wait-count DB SQL N TIMEOUT_S      poll a SQLite count until it reaches N (exit 1 on timeout)
    util.py latency SENT_DIR ARRIVALS TARGET_RATE WRK_JSON OUT
    util.py median-round RAW DB ROUNDS LABEL   pick the intake round with the median ratio
    util.py post PORT N                        N contact-form posts over 8 kept-alive connections
"""

import glob
import json
import socket
import sqlite3
import sys
import threading
import time
import urllib.parse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def wait_count(db, sql, n, timeout):
    deadline = time.monotonic() + float(timeout)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    last = -1
    while time.monotonic() < deadline:
        try:
            last = conn.execute(sql).fetchone()[0]
        except sqlite3.OperationalError:
            pass  # the schema may not exist yet, or the file is busy: try again
        if last >= int(n):
            return 0
        time.sleep(0.01)
    print(f"timed out: {last} of {n}", file=sys.stderr)
    return 1


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def latency(sent_dir, arrivals_file, target_rate, wrk_json, out):
    sent = {}
    for path in glob.glob(f"{sent_dir}/sent-*.txt"):
        with open(path) as f:
            for line in f:
                mid, ns = line.split()
                sent[mid] = int(ns)
    arrived = {}
    with open(arrivals_file) as f:
        for line in f:
            ns, mid, _rcpt = line.split(" ", 2)
            arrived.setdefault(mid, int(ns))
    lat = sorted((arrived[m] - t) / 1e6 for m, t in sent.items() if m in arrived)
    with open(wrk_json) as f:
        w = json.load(f)
    result = {
        "rate": w["rps"],
        "target_rate": float(target_rate),
        "sent": len(sent),
        "matched": len(lat),
        "missing": len(sent) - len(lat),
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "max_ms": lat[-1] if lat else float("nan"),
        "http_p99_ms": w["p99_us"] / 1000,
    }
    with open(out, "w") as f:
        json.dump(result, f)
    print(json.dumps(result))
    return 0 if lat else 1


def median_round(raw, db, rounds, label):
    """Intake runs in rounds (reference, then formgate, each on a fresh database): the round with
    the median ratio becomes `ref_DB.json` / `fg_DB.json`, so one slow stretch of a noisy machine
    neither makes nor breaks the figure. Prints a note listing every round."""
    measured = []
    for r in range(1, int(rounds) + 1):
        try:
            ref = json.load(open(f"{raw}/ref_{db}_r{r}.json"))
            fg = json.load(open(f"{raw}/fg_{db}_r{r}.json"))
        except FileNotFoundError:
            continue  # a round that did not run (formgate did not start): the others still count
        if not ref.get("rps") or "rps" not in fg:
            print(f"{label} intake round {r}: no figures (reference {ref}, formgate {fg})", file=sys.stderr)
            continue
        measured.append((fg["rps"] / ref["rps"], r, ref, fg))
    if not measured:
        return 1
    measured.sort(key=lambda m: m[0])
    _, median, ref, fg = measured[(len(measured) - 1) // 2]
    json.dump(ref, open(f"{raw}/ref_{db}.json", "w"))
    json.dump(fg, open(f"{raw}/fg_{db}.json", "w"))
    rounds_text = "; ".join(
        f"round {r}: {f['rps']:.0f} / {rf['rps']:.0f} = {ratio:.2f}" for ratio, r, rf, f in sorted(measured, key=lambda m: m[1])
    )
    print(f"{label} intake, formgate / reference per round ({rounds_text}); the table shows round {median}, the median")
    return 0


def post(port, n, connections=8):
    """The same posts as benches/lua/post.lua, each from its own address; exits 1 on any refusal."""
    import http.client

    port, n = int(port), int(n)
    message = "Hello, I would like to know more about your product. " * 5
    failed = []

    def run(c):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for i in range(c, n, connections):
            body = urllib.parse.urlencode(
                {"name": "Ada Lovelace", "email": f"ada-{i}@example.org", "subject": "A question about pricing", "message": message}
            )
            conn.request("POST", "/contact", body, {"Content-Type": "application/x-www-form-urlencoded"})
            res = conn.getresponse()
            res.read()
            if res.status >= 400:
                failed.append(res.status)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        print(f"{len(failed)} posts refused: {sorted(set(failed))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "free-port":
        free_port()
    elif cmd == "wait-count":
        sys.exit(wait_count(*args))
    elif cmd == "latency":
        sys.exit(latency(*args))
    elif cmd == "median-round":
        sys.exit(median_round(*args))
    elif cmd == "post":
        sys.exit(post(*args))
    else:
        sys.exit(f"unknown command {cmd}")
