#!/usr/bin/env bash
# Smoke test of `formgate tui` in a real terminal.
#
# Builds formgate, seeds a temporary SQLite database through a running `formgate serve` (real form
# posts with curl, real verification codes from its log), then runs the dashboard inside tmux,
# drives it with keys and reads the screen back. Checks: the tabs and counts, a single release, a
# bulk release through the confirm dialog, a new submission appearing without a key press, a
# hostile message shown escaped (and the pane title untouched), the help overlay, and that `q`
# leaves the terminal as it found it. Exits non-zero on the first failed check.
#
# Needs: cargo, curl, tmux. Usage: scripts/tui-smoke.sh   (KEEP=1 keeps the temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cargo curl tmux; do
  command -v "$tool" >/dev/null || { echo "tui-smoke: needs $tool" >&2; exit 2; }
done

echo "== building formgate"
cargo build --locked --quiet --bin formgate
bin="$PWD/target/debug/formgate"

work="$(mktemp -d)"
session="formgate-smoke-$$"
serve_pid=""
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  if [ "${KEEP:-}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

export FORMGATE_DATABASE_URL="sqlite://$work/formgate.db"
export FORMGATE_SECRET_KEYS="smoke-test-key-0123456789-0123456789-0123456789"
export FORMGATE_MAIL_DIR="$work/mail"
export FORMGATE_STAFF_INBOX="Team <team@example.org>"
export FORMGATE_LISTEN="127.0.0.1:0"
export FORMGATE_LOG="info"
# Every post comes from 127.0.0.1: the per-client limits (5 posts per 10 minutes by default) would
# answer the sixth with 429.
export FORMGATE_RATE_LIMIT_CONTACT=0 FORMGATE_RATE_LIMIT_VERIFY=0

fail() {
  echo "FAIL: $*" >&2
  echo "---- last screen ----" >&2
  tmux capture-pane -p -t "$session" >&2 2>/dev/null || true
  exit 1
}

echo "== starting formgate serve on a temporary database"
(cd "$work" && exec "$bin" serve >"$work/serve.out" 2>"$work/serve.log") &
serve_pid=$!
base=""
for _ in $(seq 1 100); do
  base="$(grep -o 'listening on http://[0-9.:]*' "$work/serve.out" 2>/dev/null | sed 's/listening on //' || true)"
  [ -n "$base" ] && break
  sleep 0.1
done
[ -n "$base" ] || { cat "$work/serve.log" >&2; fail "serve did not start"; }
echo "   $base"

# Posts a form as JSON; prints "<id> <receipt>".
submit() {
  local answer
  answer="$(curl -sf "$base/contact" -H 'content-type: application/json' -d "$1")" || fail "posting $1"
  sed -E 's/.*"id":([0-9]+).*"receipt":"([^"]+)".*/\1 \2/' <<<"$answer"
}

# Confirms message $1 with the code serve logged for it (no SMTP: links and codes are logged).
confirm() {
  local id="$1" receipt="$2" code=""
  for _ in $(seq 1 50); do
    code="$(grep "message_id=$id " "$work/serve.log" | grep -o 'code=[0-9]*' | tail -1 | cut -d= -f2 || true)"
    [ -n "$code" ] && break
    sleep 0.1
  done
  [ -n "$code" ] || fail "no code logged for message $id"
  curl -sf "$base/contact/code" -H 'content-type: application/json' \
    -d "{\"receipt\":\"$receipt\",\"code\":\"$code\"}" >/dev/null || fail "confirming message $id"
}

echo "== seeding: 3 verified messages, 1 pending, 1 hostile"
for n in 1 2 3; do
  read -r id receipt < <(submit "{\"name\":\"Visitor $n\",\"email\":\"v$n@example.org\",\"subject\":\"Question $n\",\"message\":\"Hello number $n\"}")
  confirm "$id" "$receipt"
done
submit '{"name":"Still Pending","email":"p@example.org","message":"Not confirmed yet"}' >/dev/null
# ESC, BEL and a C1 CSI pass the form's checks (only CR, LF and NUL are refused in a name).
submit '{"name":"Evil\u001b]0;pwned\u0007","email":"evil@example.org","subject":"\u001b[2Jgone","message":"\u001b]52;c;cm0gLXJm\u0007 \u009b31m \u202eexe.txt"}' >/dev/null

screen() { tmux capture-pane -p -t "$session"; }
# Waits up to $2 seconds (default 5) for the screen to match the extended regex $1.
wait_for() {
  local pattern="$1" deadline=$(( $(date +%s) + ${2:-5} ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    screen | grep -Eq -- "$pattern" && return 0
    sleep 0.2
  done
  fail "the screen never showed /$pattern/"
}
keys() { tmux send-keys -t "$session" "$@"; sleep 0.3; }

# The dashboard in a pane; afterwards the pane says how it exited and whether the terminal was
# left in raw mode.
cat >"$work/run-tui.sh" <<EOF
#!/bin/sh
cd "$work"
sh -c 'echo \$\$ >"\$1"; exec "\$2" tui --as smoke' sh "$work/tui.pid" "$bin" 2>>"$work/tui.err"
echo "tui exited with \$?"
if stty -a | grep -q -- '-icanon'; then echo "terminal left raw"; else echo "terminal restored"; fi
sleep 60
EOF
chmod +x "$work/run-tui.sh"

echo "== starting formgate tui in tmux (100x30)"
tmux new-session -d -s "$session" -x 100 -y 30 "$work/run-tui.sh"
wait_for 'Pending 2 · Verified 3 · Released 0 · Trash 0'
title_before="$(tmux display-message -p -t "$session" '#{pane_title}')"

echo "== pending tab: the hostile message is shown escaped and marked"
wait_for 'Evil\\u\{1b\}'
screen | grep -q '⚠' || fail "no ⚠ marker on the hostile row"
screen | grep -q 'u{1b}\[2Jgone' || fail "hostile subject not escaped"
keys Enter
wait_for 'This message contains control or text-direction characters'
screen | grep -q 'pending · Evil\\u{1b}\]0;pwned\\u{7} <evil@example.org>' || fail "hostile name not escaped"
screen | grep -q 'u{1b}\]52;c;cm0gLXJm\\u{7}' || fail "OSC 52 in the body not escaped"
keys Escape
[ "$(tmux display-message -p -t "$session" '#{pane_title}')" = "$title_before" ] || fail "the pane title changed"

echo "== verified tab: release one at once"
keys 2
wait_for '> +3 '
keys r
wait_for 'released #3 \(mailed to staff\)'
wait_for 'Verified 2 · Released 1'

echo "== select both remaining, release them through the dialog"
keys Space
keys Space
wait_for '2 messages selected'
keys r
wait_for 'Release 2 messages to the staff inbox\?'
screen | grep -q '#2 #1' || fail "the dialog does not list #2 #1"
keys y
wait_for '2 released'
wait_for 'Verified 0 · Released 3'
screen | grep -q 'no verified messages' || fail "Verified tab should be empty"

echo "== a new submission shows up without a key press"
submit '{"name":"Late Arrival","email":"late@example.org","message":"Just now"}' >/dev/null
wait_for 'Pending 3 · Verified 0' 3

echo "== released tab lists them, mailed"
keys 3
wait_for 'Visitor 1 '
screen | grep -Eq 'Visitor 3 .*(queued|sent)' || fail "release mail state not shown"

echo "== help overlay"
keys '?'
wait_for 'Keys'
screen | grep -q 'release: mail it to the staff inbox' || fail "help lacks the release key"
keys '?'

echo "---- the dashboard ----"
screen

echo "== q quits and restores the terminal"
keys q
wait_for 'tui exited with 0'
wait_for 'terminal restored'
screen | grep -q 'Pending' && fail "the dashboard is still on screen after quitting"

echo "== SIGTERM quits and restores the terminal"
tmux new-window -t "$session" "$work/run-tui.sh"
wait_for 'Pending 3 · Verified 0 · Released 3'
kill -TERM "$(cat "$work/tui.pid")"
wait_for 'tui exited with 0'
wait_for 'terminal restored'
[ -s "$work/tui.err" ] && { echo "---- tui stderr ----"; cat "$work/tui.err"; }

echo "PASS: tui smoke test"
