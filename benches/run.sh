#!/usr/bin/env bash
# formgate's benchmark: one machine, loopback only, about five minutes, one table at the end.
#
#   benches/run.sh
#
# Builds the release binaries (formgate and examples/reference.rs), starts an SMTP sink, and
# measures formgate side by side with a reference measured in the same run (a bare axum handler
# that parses the same form and does one INSERT), so the ratios survive a noisy machine. Prints a
# Markdown table and writes it as JSON (benches/results/<UTC time>.json). See README "Benchmark".
#
# Needs: wrk, python3, sqlite3, curl; Postfix's smtp-sink and smtp-source for the outbox figures
# (`apt-get install -y wrk postfix sqlite3`); PostgreSQL at BENCH_PG for its rows (else "n/a").
#
# Environment: BENCH_DURATION seconds per wrk run (12), BENCH_WARMUP (3), BENCH_PG
# (postgres://postgres@127.0.0.1:5432), BENCH_VERIFY_LINKS (30000), BENCH_OUT (JSON path),
# BENCH_KEEP=1 keeps the work directory, BENCH_DEADLINE seconds before the run gives up (1200),
# BENCH_SOURCE names the measured source in the table (default: the git commit), BENCH_WAIT_LOAD
# seconds to wait for a quiet machine (load < 1.0) before measuring (0), BENCH_ROUNDS intake rounds
# per database, the median one reported (3).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
B=$ROOT/benches
DUR=${BENCH_DURATION:-12}
WARM=${BENCH_WARMUP:-3}
CONNS=32
THREADS=2
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
VERIFY_LINKS=${BENCH_VERIFY_LINKS:-30000}
DRAIN=20000
HOOKS=${BENCH_HOOKS:-10000}
ROUNDS=${BENCH_ROUNDS:-3}
KEY=benchmark-signing-key-0123456789abcdefghijklmnop
WORK=$(mktemp -d "${TMPDIR:-/tmp}/formgate-bench.XXXXXX")
RAW=$WORK/raw
mkdir -p "$RAW"
export BENCH_LUA=$B/lua BENCH_THREADS=$THREADS
# Only what this script sets configures formgate.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^FORMGATE_' || true)

PIDS=()
PG_DBS=()
NOTES=()

log() { printf '\n== %s   [load %s]\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2; }
die() {
  echo "benches/run.sh: $*" >&2
  exit 1
}

# Stops one process this script started: TERM, then KILL after 10 s (STOP_KILLED=1 then).
stop() {
  local pid=$1 i
  STOP_KILLED=0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null && STOP_KILLED=1
  wait "$pid" 2>/dev/null || true
  local keep=()
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do stop "$pid"; done
  for db in "${PG_DBS[@]}"; do
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  done
  if [[ ${BENCH_KEEP:-} == 1 || $rc != 0 ]]; then
    echo "work directory kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A bound on the whole run, whatever hangs.
(
  trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep "${BENCH_DEADLINE:-1200}" &
  sp=$!
  wait "$sp"
  echo "benches/run.sh: deadline reached, stopping" >&2
  kill -TERM $$
) &
PIDS+=($!)

free_port() { python3 "$B/util.py" free-port; }

wait_port() { # port seconds pid
  local deadline=$((SECONDS + $2))
  until (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || return 1
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; } # pid VmRSS|VmHWM

rss_note() { # key kb
  python3 - "$RAW/rss.json" "$1" "$2" <<'EOF'
import json, os, sys
path, key, value = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = json.load(open(path)) if os.path.exists(path) else {}
# Over several rounds: the highest peak, the first idle figure.
d[key] = max(d.get(key, 0), value) if key.endswith("_peak_kb") else d.get(key, value)
json.dump(d, open(path, "w"))
EOF
}

na() { printf '{"na": "%s"}\n' "$2" >"$RAW/$1.json"; }

json_get() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# wrk with a warm-up run first; the measured run's figures go to $RAW/<step>.json.
run_wrk() { # step script url [wrk options]
  local step=$1 script=$2 url=$3
  shift 3
  if ((WARM > 0)); then
    wrk -t"$THREADS" -c"$CONNS" -d"${WARM}s" -s "$script" "$@" "$url" >"$WORK/$step.warmup" ||
      die "wrk warm-up for $step failed"
  fi
  wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" -s "$script" "$@" "$url" >"$WORK/$step.wrk" || die "wrk for $step failed"
  sed -n 's/^JSON://p' "$WORK/$step.wrk" >"$RAW/$step.json"
  [[ -s $RAW/$step.json ]] || die "no figures from wrk for $step (see $WORK/$step.wrk)"
  python3 - "$step" "$RAW/$step.json" <<'EOF' >&2
import json, sys
d = json.load(open(sys.argv[2]))
print(f"   {sys.argv[1]}: {d['rps']:.0f} req/s, p50 {d['p50_us']/1000:.2f} ms, p99 {d['p99_us']/1000:.2f} ms, "
      f"{d['requests']} requests, errors {d['errors']}")
EOF
}

# wrk for a script that counts its answers (common.counted): stopped with SIGINT (wrk then prints
# its summary at once) when every thread is through, instead of idling until -d.
wrk_counted() { # output script url
  local done_dir
  done_dir=$(mktemp -d "$WORK/done.XXXX")
  BENCH_DONE=$done_dir wrk -t"$THREADS" -c"$CONNS" -d120s -s "$2" "$3" >"$1" &
  local pid=$!
  PIDS+=("$pid")
  while (($(find "$done_dir" -type f | wc -l) < THREADS)) && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" || die "wrk failed (see $1)"
  stop "$pid"
}

start_ref() { # database_url → REF_PID REF_PORT
  REF_PORT=$(free_port)
  REF_LISTEN=127.0.0.1:$REF_PORT REF_DATABASE_URL=$1 "$REFBIN" >"$WORK/ref.out" 2>"$WORK/ref.err" &
  REF_PID=$!
  PIDS+=("$REF_PID")
  wait_port "$REF_PORT" 20 "$REF_PID" || die "the reference did not start: $(tail -3 "$WORK/ref.err")"
}

# Stops formgate serve; a shutdown that takes longer than 10 s is a finding of its own.
stop_fg() { # name
  stop "$FG_PID"
  if ((STOP_KILLED)); then
    echo "   $1: formgate serve did not exit within 10 s of SIGTERM; killed" >&2
    NOTES+=("$1: formgate serve did not exit within 10 s of SIGTERM and was killed (see $1.err)")
  fi
}

# formgate serve in its own directory; fails (returns 1) when it does not come up.
start_fg() { # name database_url smtp_url|dir:PATH → FG_PID FG_PORT
  local name=$1 db=$2 mail=$3 i
  FG_PORT=$(free_port)
  local env=(FORMGATE_LISTEN="127.0.0.1:$FG_PORT" FORMGATE_DATABASE_URL="$db" FORMGATE_SECRET_KEYS="$KEY")
  # All load comes from one client address: abuse limits off (0), or the benchmark would measure
  # 429s and held mails. A build without these settings ignores the variables.
  env+=(FORMGATE_RATE_LIMIT_CONTACT=0 FORMGATE_RATE_LIMIT_VERIFY=0 FORMGATE_VERIFY_MAILS_PER_ADDRESS=0
    FORMGATE_MAX_MAILS_PER_HOUR=0)
  if [[ $mail == dir:* ]]; then env+=(FORMGATE_MAIL_DIR="${mail#dir:}"); else env+=(FORMGATE_SMTP_URL="$mail"); fi
  mkdir -p "$WORK/$name"
  (cd "$WORK/$name" && exec env "${env[@]}" "$BIN" serve) >"$WORK/$name.out" 2>"$WORK/$name.err" &
  FG_PID=$!
  PIDS+=("$FG_PID")
  for i in $(seq 300); do
    curl -fs -o /dev/null "http://127.0.0.1:$FG_PORT/healthz" && return 0
    kill -0 "$FG_PID" 2>/dev/null || break
    sleep 0.05
  done
  stop "$FG_PID"
  return 1
}

# -- tools -------------------------------------------------------------------------------------
for tool in wrk python3 sqlite3 curl cargo; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y wrk sqlite3 curl; python3)"
done
SMTP_SINK=$(command -v smtp-sink || command -v /usr/sbin/smtp-sink || true)
SMTP_SOURCE=$(command -v smtp-source || command -v /usr/sbin/smtp-source || true)

# -- 1. build ----------------------------------------------------------------------------------
log "building release binaries"
cargo build --release --locked --bin formgate --example reference
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/formgate
REFBIN=$TARGET/release/examples/reference
[[ -x $BIN && -x $REFBIN ]] || die "release binaries not found under $TARGET/release"

# A busy machine makes every figure noisy (the ratios less so). BENCH_WAIT_LOAD=N waits up to N s
# for the 1-minute load average to fall below 1.0 first.
waited=0
while awk '{ exit !($1 >= 1.0) }' /proc/loadavg && ((waited < ${BENCH_WAIT_LOAD:-0})); do
  ((waited == 0)) && echo "   load $(cut -d' ' -f1 /proc/loadavg): waiting up to ${BENCH_WAIT_LOAD}s for it to fall below 1.0" >&2
  sleep 5
  waited=$((waited + 5))
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=${BENCH_OUT:-$B/results/$STAMP.json}
mkdir -p "$(dirname "$OUT")"
if awk '{ exit !($1 >= 1.0) }' /proc/loadavg; then
  echo "   warning: load average $LOAD_BEFORE; other work on this machine makes the figures noisy" >&2
  NOTES+=("the machine was busy when measuring started (load $LOAD_BEFORE): absolute figures are noisy")
fi

# -- 2. the SMTP sink --------------------------------------------------------------------------
SINK_PORT=$(free_port)
if [[ -n $SMTP_SINK ]]; then
  sink_user=()
  [[ $EUID == 0 ]] && sink_user=(-u nobody)
  "$SMTP_SINK" "${sink_user[@]}" "127.0.0.1:$SINK_PORT" 512 >"$WORK/smtp-sink.log" 2>&1 &
  SINK_PID=$!
  SINK_NAME="Postfix smtp-sink"
else
  python3 "$B/sink.py" --listen "127.0.0.1:$SINK_PORT" --out /dev/null >"$WORK/smtp-sink.log" 2>&1 &
  SINK_PID=$!
  SINK_NAME="benches/sink.py (smtp-sink not installed)"
  NOTES+=("smtp-sink not installed: the Python sink (benches/sink.py) stood in; it is slower")
fi
PIDS+=("$SINK_PID")
wait_port "$SINK_PORT" 10 "$SINK_PID" || die "the SMTP sink did not start: $(cat "$WORK/smtp-sink.log")"
SMTP=smtp://127.0.0.1:$SINK_PORT

# -- 3. intake: POST /contact, reference then formgate, per database ---------------------------
log "reference: bare axum form POST"
start_ref none
run_wrk ref_bare "$B/lua/post.lua" "http://127.0.0.1:$REF_PORT/contact"
stop "$REF_PID"

# Each database's intake is measured in rounds (reference, then formgate, each on a fresh
# database); the round with the median ratio goes in the table and every round in its notes, so
# one slow stretch of a shared machine neither makes nor breaks the figure.
for r in $(seq "$ROUNDS"); do
  log "round $r of $ROUNDS: reference: one SQLite INSERT"
  start_ref "sqlite://$WORK/ref_r$r.db"
  sleep 1
  rss_note ref_idle_kb "$(kb "$REF_PID" VmRSS)"
  run_wrk "ref_sqlite_r$r" "$B/lua/post.lua" "http://127.0.0.1:$REF_PORT/contact"
  rss_note ref_sqlite_peak_kb "$(kb "$REF_PID" VmHWM)"
  stop "$REF_PID"

  log "round $r of $ROUNDS: formgate: POST /contact on SQLite (mail to $SINK_NAME)"
  start_fg "fg_sqlite_r$r" "sqlite://$WORK/fg_r$r.db" "$SMTP" ||
    die "formgate did not start: $(tail -5 "$WORK/fg_sqlite_r$r.err")"
  sleep 1
  rss_note fg_idle_kb "$(kb "$FG_PID" VmRSS)"
  run_wrk "fg_sqlite_r$r" "$B/lua/post.lua" "http://127.0.0.1:$FG_PORT/contact"
  rss_note fg_sqlite_peak_kb "$(kb "$FG_PID" VmHWM)"
  stop_fg "fg_sqlite_r$r"
done
note=$(python3 "$B/util.py" median-round "$RAW" sqlite "$ROUNDS" SQLite) || die "no SQLite intake figures"
NOTES+=("$note")

# A declared form with eight fields, each checked by its type, on SQLite: one round, its ratio
# against the median SQLite round's reference.
log "formgate: POST /f/quote (a declared form, eight fields) on SQLite"
mkdir -p "$WORK/fg_declared"
cat >"$WORK/fg_declared/formgate.toml" <<'TOML'
[forms.contact]
[forms.quote]
fields = [
  { name = "name", type = "text", required = true },
  { name = "email", type = "email", required = true },
  { name = "phone", type = "tel" },
  { name = "budget", type = "select", options = ["< 5k", "5-20k", "> 20k"], required = true },
  { name = "topics", type = "checkboxes", options = ["Web", "App", "Hosting"] },
  { name = "seats", type = "number", min = 1, max = 500 },
  { name = "message", type = "textarea", required = true },
  { name = "consent", type = "checkbox", required = true },
]
TOML
if start_fg fg_declared "sqlite://$WORK/fg_declared.db" "$SMTP"; then
  run_wrk fg_declared "$B/lua/declared.lua" "http://127.0.0.1:$FG_PORT/f/quote"
  stop_fg fg_declared
else
  na fg_declared "n/a (this build has no declared forms)"
fi

if command -v psql >/dev/null && psql -qAt "$PG/postgres" -c 'select 1' >/dev/null 2>&1; then
  pg_ok=1
  for r in $(seq "$ROUNDS"); do
    REF_DB=formgate_bench_ref_$$_$r
    FG_DB=formgate_bench_$$_$r
    PG_DBS+=("$REF_DB" "$FG_DB")
    psql -q "$PG/postgres" -c "CREATE DATABASE $REF_DB" -c "CREATE DATABASE $FG_DB" >/dev/null

    log "round $r of $ROUNDS: reference: one PostgreSQL INSERT"
    start_ref "$PG/$REF_DB"
    run_wrk "ref_pg_r$r" "$B/lua/post.lua" "http://127.0.0.1:$REF_PORT/contact"
    rss_note ref_pg_peak_kb "$(kb "$REF_PID" VmHWM)"
    stop "$REF_PID"

    log "round $r of $ROUNDS: formgate: POST /contact on PostgreSQL"
    if start_fg "fg_pg_r$r" "$PG/$FG_DB" "$SMTP"; then
      run_wrk "fg_pg_r$r" "$B/lua/post.lua" "http://127.0.0.1:$FG_PORT/contact"
      rss_note fg_pg_peak_kb "$(kb "$FG_PID" VmHWM)"
      stop_fg "fg_pg_r$r"
    else
      echo "   formgate does not serve on PostgreSQL: $(grep -m1 -i error "$WORK/fg_pg_r$r.err" || tail -1 "$WORK/fg_pg_r$r.err")" >&2
      [[ -f $RAW/fg_pg_r1.json ]] || na fg_pg "n/a (PostgreSQL store not available)"
      pg_ok=0
      break
    fi
  done
  # Rounds measured before a failed start still count; with none, the rows say why.
  if note=$(python3 "$B/util.py" median-round "$RAW" pg "$ROUNDS" PostgreSQL); then
    NOTES+=("$note")
    ((pg_ok)) || NOTES+=("PostgreSQL intake: formgate did not start in a later round (see fg_pg_r*.err)")
  else
    na ref_pg "n/a (formgate did not serve on PostgreSQL)"
  fi
else
  echo "   no PostgreSQL at $PG" >&2
  na ref_pg "n/a (no PostgreSQL at $PG)"
  na fg_pg "n/a (no PostgreSQL at $PG)"
fi

# -- 4. POST /verify/{token} -------------------------------------------------------------------
# Links can only be signed with the key, so formgate makes them: with no SMTP it logs every
# verification link (and writes the mail to mail_dir). Each link is then confirmed exactly once.
log "POST /verify/{token}: $VERIFY_LINKS messages submitted for their links"
start_fg verify "sqlite://$WORK/verify.db" "dir:$WORK/mail-verify" ||
  die "formgate did not start: $(tail -5 "$WORK/verify.err")"
BENCH_MAX=$((VERIFY_LINKS / THREADS)) wrk_counted "$WORK/verify-seed.wrk" "$B/lua/post.lua" \
  "http://127.0.0.1:$FG_PORT/contact"
python3 "$B/util.py" wait-count "$WORK/verify.db" \
  "SELECT (SELECT count(*) FROM outbox WHERE state = 'queued') = 0" 1 120 || die "mails for the links were not written"
grep -o '/verify/v1\.[A-Za-z0-9._-]*' "$WORK/verify.err" | awk '!seen[$0]++' >"$WORK/links.txt"
echo "   $(wc -l <"$WORK/links.txt") links" >&2
[[ $(wc -l <"$WORK/links.txt") -ge $((VERIFY_LINKS / 2)) ]] || die "too few links in the log"
log "POST /verify/{token}: confirming each link once"
BENCH_TOKENS=$WORK/links.txt wrk_counted "$WORK/verify.wrk" "$B/lua/verify.lua" "http://127.0.0.1:$FG_PORT"
sed -n 's/^JSON://p' "$WORK/verify.wrk" >"$RAW/verify.json"
[[ -s $RAW/verify.json ]] || die "no figures from wrk for verify (see $WORK/verify.wrk)"
echo "   verify: $(json_get "$RAW/verify.json" rps) req/s over $(json_get "$RAW/verify.json" requests) links" >&2
stop_fg verify

# -- 5. outbox drain ---------------------------------------------------------------------------
# 20 000 verification mails queued straight into a fresh database as a submission queues them
# (a message, and an outbox row with its link; the worker renders each mail when it sends it),
# then `serve` starts and sends them into the sink; against smtp-source -s 10 with messages the
# size of a real one (an .eml from step 4).
log "outbox drain: $DRAIN queued mails into $SINK_NAME"
PAYLOAD=$(find "$WORK/mail-verify" -name '*.eml' -print -quit)
[[ -n $PAYLOAD ]] || die "no .eml written in step 4"
PAYLOAD_BYTES=$(stat -c %s "$PAYLOAD")
(cd "$WORK" && FORMGATE_DATABASE_URL="sqlite://$WORK/drain.db" FORMGATE_SECRET_KEYS=$KEY "$BIN" migrate >/dev/null) ||
  die "formgate migrate failed"
NOW=$(date +%s)
sqlite3 "$WORK/drain.db" <<SQL || die "seeding the outbox failed"
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $DRAIN)
INSERT INTO messages (status, name, email, body, created_at, updated_at, nonce, verify_expires_at)
SELECT 'pending', 'Visitor ' || i, 'drain-' || i || '@example.org', 'Hello', $NOW, $NOW, 'nonce-' || i, $NOW + 259200
FROM n;
INSERT INTO outbox (message_id, kind, recipient, sender, message_id_header, link_nonce, link_expires_at,
                    created_at, next_attempt_at, give_up_at)
SELECT id, 'verify', email, 'formgate@localhost', '<drain.' || id || '@localhost>', nonce, verify_expires_at,
       $NOW, $NOW, $NOW + 259200
FROM messages;
SQL
lanes=4 # formgate's default smtp_connections
t0=$(date +%s%N)
start_fg drain "sqlite://$WORK/drain.db" "$SMTP" || die "formgate did not start: $(tail -5 "$WORK/drain.err")"
python3 "$B/util.py" wait-count "$WORK/drain.db" "SELECT count(*) FROM outbox WHERE state <> 'queued'" "$DRAIN" 120 ||
  die "the outbox did not drain"
t1=$(date +%s%N)
stop_fg drain
sent=$(sqlite3 "$WORK/drain.db" "SELECT count(*) FROM outbox WHERE state = 'sent'")
[[ $sent == "$DRAIN" ]] || die "only $sent of $DRAIN mails were sent (see $WORK/drain.err)"
if [[ -n $SMTP_SOURCE ]]; then
  s0=$(date +%s%N)
  "$SMTP_SOURCE" -s 10 -m "$DRAIN" -l "$PAYLOAD_BYTES" -f bench@localhost -t sink@localhost "127.0.0.1:$SINK_PORT" ||
    die "smtp-source failed"
  s1=$(date +%s%N)
  source_s=$(python3 -c "print(($s1 - $s0) / 1e9)")
else
  source_s=null
  NOTES+=("smtp-source not installed: no reference for the outbox drain")
fi
cat >"$RAW/drain.json" <<EOF
{"formgate_msgs": $DRAIN, "formgate_s": $(python3 -c "print(($t1 - $t0) / 1e9)"), "lanes": $lanes,
 "source_msgs": $DRAIN, "source_s": $source_s, "payload_bytes": $PAYLOAD_BYTES, "sink": "$SINK_NAME"}
EOF
python3 -c "import json; d = json.load(open('$RAW/drain.json')); print('   formgate %.0f msgs/s, smtp-source -s 10 %s msgs/s' % (d['formgate_msgs'] / d['formgate_s'], d['source_s'] and round(d['source_msgs'] / d['source_s'])))" >&2

# -- 5b. webhook deliveries --------------------------------------------------------------------
# HOOKS webhook deliveries (a released message's Standard Webhooks event, ~800 bytes) queued
# straight into a fresh database as a release queues them, then `serve` starts and delivers them,
# signed, into the reference's `POST /hook` over its 16 webhook lanes; against `wrk` posting the
# same body with the same headers to the same receiver over 16 connections.
log "webhook deliveries: $HOOKS queued events into the reference's /hook"
start_ref none
HOOK_URL="http://127.0.0.1:$REF_PORT/hook"
python3 - "$WORK/hook-body.json" <<'EOF'
import json, sys
body = {"type": "message.released", "timestamp": "2026-12-02T10:00:00Z", "data": {
    "id": 1, "form": "contact", "name": "Ada Lovelace", "email": "ada@example.org",
    "subject": "A question about pricing", "message": "Hello, I would like to know more about your product. " * 5,
    "fields": [{"name": "company", "label": "Company", "value": "Analytical Engines"}],
    "submitted_at": "2026-12-02T09:58:00Z", "verified_at": "2026-12-02T09:59:00Z",
    "released_at": "2026-12-02T10:00:00Z", "released_by": "alice"}}
open(sys.argv[1], "w").write(json.dumps(body, separators=(",", ":")))
EOF
mkdir -p "$WORK/hooks"
cat >"$WORK/hooks/formgate.toml" <<EOF
webhook_allow_private = true
[[webhooks]]
url = "$HOOK_URL"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EOF
(cd "$WORK" && FORMGATE_DATABASE_URL="sqlite://$WORK/hooks.db" FORMGATE_SECRET_KEYS=$KEY "$BIN" migrate >/dev/null) ||
  die "formgate migrate failed"
NOW=$(date +%s)
sqlite3 "$WORK/hooks.db" <<SQL || die "seeding the webhook deliveries failed"
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $HOOKS)
INSERT INTO messages (status, name, email, body, created_at, updated_at, nonce, verify_expires_at)
SELECT 'released', 'Visitor ' || i, 'hook-' || i || '@example.org', 'Hello', $NOW, $NOW, 'nonce-' || i, $NOW + 259200
FROM n;
INSERT INTO outbox (message_id, kind, recipient, sender, message_id_header, created_at, next_attempt_at, give_up_at)
SELECT id, 'webhook', '$HOOK_URL', 'contact', 'msg_' || printf('%032x', id), $NOW, $NOW, $NOW + 259200
FROM messages;
INSERT INTO outbox_payloads (outbox_id, payload) SELECT id, readfile('$WORK/hook-body.json') FROM outbox;
SQL
h0=$(date +%s%N)
start_fg hooks "sqlite://$WORK/hooks.db" "dir:$WORK/hooks-mail" || die "formgate did not start: $(tail -5 "$WORK/hooks.err")"
python3 "$B/util.py" wait-count "$WORK/hooks.db" "SELECT count(*) FROM outbox WHERE state <> 'queued'" "$HOOKS" 120 ||
  die "the webhook deliveries did not drain"
h1=$(date +%s%N)
stop_fg hooks
delivered=$(sqlite3 "$WORK/hooks.db" "SELECT count(*) FROM outbox WHERE state = 'sent'")
[[ $delivered == "$HOOKS" ]] || die "only $delivered of $HOOKS webhooks were delivered (see $WORK/hooks.err)"
BENCH_HOOK_BODY=$WORK/hook-body.json CONNS=16 run_wrk hook_ref "$B/lua/hook.lua" "$HOOK_URL"
stop "$REF_PID"
cat >"$RAW/hooks.json" <<EOF
{"formgate_deliveries": $HOOKS, "formgate_s": $(python3 -c "print(($h1 - $h0) / 1e9)"), "lanes": 16,
 "body_bytes": $(stat -c %s "$WORK/hook-body.json")}
EOF
python3 -c "import json; d = json.load(open('$RAW/hooks.json')); r = json.load(open('$RAW/hook_ref.json')); print('   formgate %.0f deliveries/s, wrk %.0f req/s' % (d['formgate_deliveries'] / d['formgate_s'], r['rps']))" >&2

# -- 6. submit-to-mail latency at half the maximum intake rate ---------------------------------
MAX_RPS=$(json_get "$RAW/fg_sqlite.json" rps)
RATE=$(python3 -c "print(round($MAX_RPS / 2))")
# Each connection waits this long after an answer (about 1 ms at this load) before its next request.
DELAY_MS=$(python3 -c "print(max(1, round($CONNS * 1000 / $RATE) - 1))")
log "submit → mail: $RATE req/s (pause $DELAY_MS ms per connection), mail into benches/sink.py"
LSINK_PORT=$(free_port)
python3 "$B/sink.py" --listen "127.0.0.1:$LSINK_PORT" --out "$WORK/arrivals.txt" >"$WORK/sink.log" 2>&1 &
LSINK_PID=$!
PIDS+=("$LSINK_PID")
wait_port "$LSINK_PORT" 10 "$LSINK_PID" || die "benches/sink.py did not start: $(cat "$WORK/sink.log")"
start_fg latency "sqlite://$WORK/latency.db" "smtp://127.0.0.1:$LSINK_PORT" ||
  die "formgate did not start: $(tail -5 "$WORK/latency.err")"
mkdir -p "$WORK/lat-warm" "$WORK/lat"
BENCH_SENT_DIR=$WORK/lat-warm BENCH_DELAY_MS=$DELAY_MS wrk -t"$THREADS" -c"$CONNS" -d"${WARM}s" -s "$B/lua/latency.lua" \
  "http://127.0.0.1:$FG_PORT/contact" >/dev/null || die "wrk warm-up for latency failed"
BENCH_SENT_DIR=$WORK/lat BENCH_DELAY_MS=$DELAY_MS WARM=0 run_wrk latency_wrk "$B/lua/latency.lua" "http://127.0.0.1:$FG_PORT/contact"
python3 "$B/util.py" wait-count "$WORK/latency.db" "SELECT (SELECT count(*) FROM outbox WHERE state <> 'sent') = 0" 1 60 ||
  die "not every latency mail was sent"
stop "$LSINK_PID"
stop_fg latency
python3 "$B/util.py" latency "$WORK/lat" "$WORK/arrivals.txt" "$RATE" "$RAW/latency_wrk.json" "$RAW/latency.json" >&2 ||
  die "no latency figures"

# -- 7. the dashboard --------------------------------------------------------------------------
if "$BIN" tui --help >/dev/null 2>&1 && [[ -f $B/tui_probe.py ]]; then
  log "dashboard with 100 000 messages"
  python3 "$B/tui_probe.py" "$BIN" "$WORK" "$KEY" >"$RAW/tui.json" || na tui "n/a (the dashboard probe failed)"
else
  na tui "n/a (formgate tui not available)"
fi

# -- 8. the table ------------------------------------------------------------------------------
log "report"
if [[ -n ${BENCH_SOURCE:-} ]]; then
  SOURCE=$BENCH_SOURCE
else
  SOURCE="commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  [[ -z $(git status --porcelain -- src migrations Cargo.toml Cargo.lock 2>/dev/null) ]] ||
    SOURCE="$SOURCE + uncommitted changes in src/ or migrations/"
fi
python3 - "$RAW/meta.json" <<EOF
import json, sys
notes = [n for n in """$(printf '%s\n' "${NOTES[@]}")""".splitlines() if n]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) / 1048576
json.dump({
    "date": "$STAMP",
    "machine": f"$(nproc) cores ({cpu}), {mem:.0f} GiB, $(uname -sr)",
    "load_before": "$LOAD_BEFORE",
    "load_after": "$(cut -d' ' -f1-3 /proc/loadavg)",
    "source": "$SOURCE",
    "wrk": "$THREADS threads, $CONNS connections, ${WARM} s warm-up, ${DUR} s measured",
    "notes": notes,
}, open(sys.argv[1], "w"), indent=2)
EOF
python3 "$B/report.py" "$RAW" "$OUT"
echo
echo "written: $OUT"
