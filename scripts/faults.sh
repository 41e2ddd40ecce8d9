#!/usr/bin/env bash
# The fault soak: formgate's release binary against a real SMTP server that fails on purpose
# (down, 451 storms, connections dropped after DATA, a hung connection), kill -9 mid-send and
# under HTTP load, SIGTERM under load, and two instances on one PostgreSQL with one killed.
# Everything on 127.0.0.1; each scenario bounded in posts and seconds (about 6 minutes in all).
# Prints a Markdown table (README: Operations → Faults) and exits 1 if any scenario lost mail.
#
#   scripts/faults.sh [--only outage 451 drop hang kill-send kill-load term-load postgres]
#
# FORMGATE_BIN=path uses that binary instead of building target/release/formgate.
# Needs python3 (standard library only) and, for the PostgreSQL row, psql and a server on
# 127.0.0.1:5432 that trusts the `postgres` user (skipped without one).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${FORMGATE_BIN:-}
if [[ -z $BIN ]]; then
  cargo build --release --locked --quiet
  BIN=target/release/formgate
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/formgate-faults.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
echo "faults: $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -sr), commit $(git rev-parse --short HEAD)" >&2
python3 scripts/faults.py "$BIN" "$WORK" "$@"
