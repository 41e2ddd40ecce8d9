#!/usr/bin/env bash
# Instructions per submission, counted by valgrind's callgrind: two formgate binaries, each taking
# N posts (default 2000) on SQLite in /dev/shm with mail into Postfix's smtp-sink, and 8 posts for
# the start-up cost, which is subtracted. Every post's whole path is counted: HTTP, intake, the
# group commit, and rendering and sending its verification mail.
#
#   benches/instructions.sh BASE_BINARY NEW_BINARY [N]
#
# Wall-clock figures on a shared 2-core machine swing ±5% and more between runs, so a 3% change
# hides in them (benches/ab.sh needs many rounds to see it). Instruction counts repeat to within
# about 1% for the same binary and show it in one run of a few minutes. They are not time: an
# fsync or a lock wait costs no instructions, so this complements benches/run.sh, never replaces it.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(realpath "${1:?base binary}")
B=$(realpath "${2:?new binary}")
N=${3:-2000}
command -v valgrind >/dev/null || { echo "benches/instructions.sh: valgrind missing" >&2; exit 1; }
SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[[ -x $SINK ]] || { echo "benches/instructions.sh: smtp-sink missing (apt-get install -y postfix)" >&2; exit 1; }
WORK=$(mktemp -d /dev/shm/formgate-instructions.XXXXXX)
free_port() { python3 benches/util.py free-port; }
SINK_PORT=$(free_port)
sink_user=()
[[ $EUID == 0 ]] && sink_user=(-u nobody)
"$SINK" "${sink_user[@]}" "127.0.0.1:$SINK_PORT" 512 >/dev/null 2>&1 &
SINK_PID=$!
trap 'kill "$SINK_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# Prints the instructions one run of `posts` posts took, start-up and shutdown included.
count() {
  local bin=$1 posts=$2 dir port pid
  dir=$(mktemp -d "$WORK/run.XXXXXX")
  port=$(free_port)
  (cd "$dir" && exec env FORMGATE_LISTEN="127.0.0.1:$port" FORMGATE_DATABASE_URL="sqlite://$dir/f.db" \
    FORMGATE_SECRET_KEYS=benchmark-signing-key-0123456789abcdefghijklmnop \
    FORMGATE_SMTP_URL="smtp://127.0.0.1:$SINK_PORT" FORMGATE_RATE_LIMIT_CONTACT=0 FORMGATE_RATE_LIMIT_VERIFY=0 \
    FORMGATE_VERIFY_MAILS_PER_ADDRESS=0 FORMGATE_MAX_MAILS_PER_HOUR=0 \
    valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" "$bin" serve) >"$dir/out" 2>"$dir/err" &
  pid=$!
  for _ in $(seq 600); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  python3 benches/util.py post "$port" "$posts"
  # Every verification mail sent before the count ends, so each run counts the same work.
  python3 benches/util.py wait-count "$dir/f.db" "SELECT COUNT(*) FROM outbox WHERE state = 'sent'" "$posts" 120
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  sed -n 's/^summary: //p' "$dir/callgrind.out"
}

declare -A per_post
for side in A B; do
  bin=${!side}
  start=$(count "$bin" 8)
  total=$(count "$bin" "$N")
  per_post[$side]=$(((total - start) / (N - 8)))
  echo "$side: $total instructions for $N posts, $start for 8: ${per_post[$side]} per post"
done
python3 -c "a, b = ${per_post[A]}, ${per_post[B]}; print(f'per post: A {a:,}, B {b:,}, B/A {b / a:.3f}')"
