#!/usr/bin/env bash
# Intake-only A/B: two formgate binaries, alternating, on SQLite with mail into Postfix's smtp-sink,
# wrk 2 threads × 32 connections, 3 s warm-up then 10 s measured, a fresh database per run.
#
#   benches/ab.sh BASE_BINARY NEW_BINARY [ROUNDS]
#
# benches/run.sh measures each figure against a reference of the same run, but on a shared machine
# the reference itself moves by a third between runs; alternating the two binaries, round after
# round, compares them under the same noise. Prints each run and the two means.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(realpath "${1:?base binary}")
B=$(realpath "${2:?new binary}")
ROUNDS=${3:-4}
SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[[ -x $SINK ]] || { echo "benches/ab.sh: smtp-sink missing (apt-get install -y postfix)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "benches/ab.sh: wrk missing (apt-get install -y wrk)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/formgate-ab.XXXXXX")
free_port() { python3 benches/util.py free-port; }
SINK_PORT=$(free_port)
sink_user=()
[[ $EUID == 0 ]] && sink_user=(-u nobody)
"$SINK" "${sink_user[@]}" "127.0.0.1:$SINK_PORT" 512 >/dev/null 2>&1 &
SINK_PID=$!
trap 'kill "$SINK_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
export BENCH_LUA=$PWD/benches/lua
declare -A total=([A]=0 [B]=0)
for round in $(seq "$ROUNDS"); do
  for side in A B; do
    bin=${!side}
    dir=$WORK/$side$round
    port=$(free_port)
    mkdir -p "$dir"
    (cd "$dir" && exec env FORMGATE_LISTEN="127.0.0.1:$port" FORMGATE_DATABASE_URL="sqlite://$dir/f.db" \
      FORMGATE_SECRET_KEYS=benchmark-signing-key-0123456789abcdefghijklmnop \
      FORMGATE_SMTP_URL="smtp://127.0.0.1:$SINK_PORT" FORMGATE_RATE_LIMIT_CONTACT=0 FORMGATE_RATE_LIMIT_VERIFY=0 \
      FORMGATE_VERIFY_MAILS_PER_ADDRESS=0 FORMGATE_MAX_MAILS_PER_HOUR=0 "$bin" serve) >"$dir/out" 2>"$dir/err" &
    pid=$!
    for _ in $(seq 200); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.05; done
    wrk -t2 -c32 -d3s -s benches/lua/post.lua "http://127.0.0.1:$port/contact" >/dev/null
    rps=$(wrk -t2 -c32 -d10s -s benches/lua/post.lua "http://127.0.0.1:$port/contact" |
      sed -n 's/^JSON://p' | python3 -c 'import json, sys; print(round(json.load(sys.stdin)["rps"]))')
    echo "$side round $round: $rps req/s"
    total[$side]=$((total[$side] + rps))
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
  done
done
python3 -c "a, b = ${total[A]} / $ROUNDS, ${total[B]} / $ROUNDS; print(f'mean: A {a:.0f} req/s, B {b:.0f} req/s, B/A {b / a:.2f}')"
