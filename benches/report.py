#!/usr/bin/env python3
"""Turns the raw measurements of one benches/run.sh run into the table and its JSON.

    report.py RAW_DIR OUT.json

RAW_DIR holds one JSON file per step (written by run.sh); a missing file or an {"na": "why"}
file makes that figure "n/a" with the reason in the notes. Prints the table as Markdown (the form
the README carries) and writes {"meta": …, "rows": […]} to OUT.json.
"""

import json
import os
import sys


def load(raw, name):
    path = os.path.join(raw, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def main():
    raw, out = sys.argv[1], sys.argv[2]
    meta = load(raw, "meta") or {}
    rows, notes = [], []

    def row(figure, unit, fg, ref, target=None, better="higher", ratio_target=None, note=None):
        """target: an absolute bound on formgate's figure; ratio_target: a bound on formgate/reference."""
        ratio = fg / ref if isinstance(fg, (int, float)) and isinstance(ref, (int, float)) and ref else None
        met = None
        if ratio_target is not None and ratio is not None:
            met = ratio >= ratio_target
        elif target is not None and isinstance(fg, (int, float)):
            met = fg >= target if better == "higher" else fg <= target
        goal = None
        if ratio_target is not None:
            goal = f"ratio ≥ {ratio_target:g}"
        elif target is not None:
            goal = f"{'≥' if better == 'higher' else '≤'} {target:g} {unit}"
        rows.append(
            {"figure": figure, "unit": unit, "formgate": fg, "reference": ref, "ratio": ratio, "target": goal, "met": met}
        )
        if note:
            notes.append(f"{figure}: {note}")

    def na(step):
        """The reason a step has no figures, or None when it has them."""
        d = load(raw, step)
        if d is None:
            return f"n/a (step `{step}` did not run)"
        return d.get("na")

    def wrk(step):
        d = load(raw, step)
        return None if d is None or "na" in d else d

    def figure_or_na(step, key, scale=1.0):
        d = wrk(step)
        return round(d[key] * scale, 2) if d else (na(step) or "n/a")

    # Intake: POST /contact at 32 connections.
    bare = wrk("ref_bare")
    row("reference only: bare axum form POST (no database)", "req/s", None, bare["rps"] if bare else "n/a")
    for db, label in (("sqlite", "SQLite"), ("pg", "PostgreSQL")):
        fg, ref = wrk(f"fg_{db}"), wrk(f"ref_{db}")
        why = None if fg else na(f"fg_{db}")
        row(f"POST /contact on {label} (ref: one INSERT)", "req/s",
            fg["rps"] if fg else why, ref["rps"] if ref else na(f"ref_{db}"), ratio_target=0.75)
        for p in ("p50", "p99"):
            row(f"POST /contact on {label}, {p} latency", "ms",
                round(fg[f"{p}_us"] / 1000, 2) if fg else why,
                round(ref[f"{p}_us"] / 1000, 2) if ref else na(f"ref_{db}"))
        for step, d in ((f"fg_{db}", fg), (f"ref_{db}", ref)):
            if d and d["errors"]["status"] + d["errors"]["timeout"] + d["errors"]["connect"] > 0:
                notes.append(f"{step}: errors {d['errors']}")

    fg, ref = wrk("fg_declared"), wrk("ref_sqlite")
    row("POST /f/quote, a declared form of 8 fields, on SQLite (ref: one INSERT)", "req/s",
        fg["rps"] if fg else na("fg_declared"), ref["rps"] if ref else na("ref_sqlite"), ratio_target=0.75)

    ref = wrk("ref_sqlite")
    v = wrk("verify")
    row("POST /verify/{token} on SQLite (ref: one INSERT)", "req/s",
        v["rps"] if v else na("verify"), ref["rps"] if ref else "n/a")
    if v:
        notes.append(f"verify: {v['requests']} confirmations of distinct links, each a fresh token")

    d = load(raw, "drain")
    if d and "na" not in d:
        row("outbox drain of 20 000 queued mails (ref: smtp-source -s 10)", "msgs/s",
            round(d["formgate_msgs"] / d["formgate_s"], 1), round(d["source_msgs"] / d["source_s"], 1), ratio_target=0.5)
        notes.append(
            f"drain: formgate sent {d['formgate_msgs']} in {d['formgate_s']:.2f} s over {d['lanes']} connections; "
            f"smtp-source -s 10 sent {d['source_msgs']} ({d['payload_bytes']} bytes each) in {d['source_s']:.2f} s; both into {d['sink']}"
        )
    else:
        row("outbox drain of 20 000 queued mails (ref: smtp-source -s 10)", "msgs/s", na("drain") or d["na"], None)

    h, href = load(raw, "hooks"), wrk("hook_ref")
    if h and "na" not in h:
        row("webhook deliveries of 10 000 queued events (ref: wrk, 16 connections, same receiver)", "req/s",
            round(h["formgate_deliveries"] / h["formgate_s"], 1), href["rps"] if href else "n/a")
        notes.append(
            f"webhooks: formgate delivered {h['formgate_deliveries']} signed events ({h['body_bytes']} bytes each) "
            f"in {h['formgate_s']:.2f} s over {h['lanes']} lanes into the reference's POST /hook"
        )
    else:
        row("webhook deliveries of 10 000 queued events (ref: wrk, 16 connections, same receiver)", "req/s",
            na("hooks") or (h or {}).get("na", "n/a"), None)

    lat = load(raw, "latency")
    if lat and "na" not in lat:
        for p, target in (("p50", None), ("p99", 1000)):
            row(f"submit → mail in sink, {p} (at {lat['rate']:.0f} req/s)", "ms", round(lat[f"{p}_ms"], 1), None,
                target=target, better="lower")
        notes.append(
            f"latency: {lat['matched']} mails at {lat['rate']:.0f} req/s (half of the SQLite intake is "
            f"{lat['target_rate']:.0f}); {lat['missing']} not arrived; max {lat['max_ms']:.1f} ms"
        )
    else:
        row("submit → mail in sink, p99", "ms", na("latency") or lat["na"], None, target=1000, better="lower")

    t = load(raw, "tui")
    tna = na("tui") if t is None or "na" in t else None
    row("dashboard: first full frame, 100 000 messages", "ms", t["first_frame_ms"] if not tna else tna, None,
        target=100, better="lower")
    row("dashboard: key press → updated frame (median)", "ms", t["key_p50_ms"] if not tna else tna, None,
        target=16, better="lower")
    row("dashboard: RSS", "MB", t["rss_mb"] if not tna else tna, None, target=60, better="lower")
    sna = tna or (t.get("ssh_na") if t else None) or ("n/a" if "ssh_key_p50_ms" not in (t or {}) else None)
    for p in ("p50", "p99"):
        row(f"dashboard over SSH, 10 sessions open: key press → updated frame ({p}; ref: local median)", "ms",
            t[f"ssh_key_{p}_ms"] if not sna else sna, t["key_p50_ms"] if not tna else None,
            target=16 if p == "p50" else 50, better="lower")
    if not tna:
        notes.append(f"dashboard: key press median of 30 `j`, slowest {t['key_max_ms']} ms; first frame "
                     f"counts from the process start (opening the database included)")

    r = load(raw, "rss") or {}
    mb = lambda k: round(r[k] / 1024, 1) if k in r else "n/a"
    row("serve RSS idle (ref: the reference, idle)", "MB", mb("fg_idle_kb"), mb("ref_idle_kb"), target=30, better="lower")
    row("serve peak RSS under the SQLite intake run (ref: same)", "MB", mb("fg_sqlite_peak_kb"), mb("ref_sqlite_peak_kb"),
        target=150, better="lower")
    if "fg_pg_peak_kb" in r:
        row("serve peak RSS under the PostgreSQL intake run (ref: same)", "MB", mb("fg_pg_peak_kb"), mb("ref_pg_peak_kb"),
            target=150, better="lower")

    for n in meta.get("notes", []):
        notes.append(n)

    def cell(v):
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 10 else f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.1f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    print(f"formgate benchmark, {meta.get('date', '?')} on {meta.get('machine', '?')}")
    print(f"load average: before {meta.get('load_before', '?')}, after {meta.get('load_after', '?')}; "
          f"source {meta.get('source', '?')}")
    print()
    print("| figure | unit | formgate | reference | ratio | target | met |")
    print("|---|---|---:|---:|---:|---|---|")
    for x in rows:
        ratio = f"{x['ratio']:.2f}" if x["ratio"] is not None else "—"
        met = {True: "yes", False: "**no**", None: "—"}[x["met"]]
        print(f"| {x['figure']} | {x['unit']} | {cell(x['formgate'])} | {cell(x['reference'])} | {ratio} | "
              f"{x['target'] or '—'} | {met} |")
    if notes:
        print()
        for n in notes:
            print(f"- {n}")
    with open(out, "w") as f:
        json.dump({"meta": meta, "rows": rows, "notes": notes}, f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
