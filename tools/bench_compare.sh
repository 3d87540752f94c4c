#!/usr/bin/env bash
# brick against Keras, PyTorch and JAX on this machine, in one run; prints the comparison.
# Run by hand (never by CI): it needs the peers' virtualenv (tools/peers/setup_venv.sh,
# about 7 GiB) and takes about 15 minutes.
#
#   bash tools/peers/setup_venv.sh            # once: VENV=$HOME/.venvs/peers
#   bash tools/bench_compare.sh               # results in bench-results.jsonl, table on stdout
#
# brick's benchmark runs before and after the peers; the table shows the median of its runs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench-results.jsonl}"
LOG="${LOG:-bench-results.log}"
export PY="${PY:-$HOME/.venvs/peers/bin/python}"
export E="${E:-4}"
cargo build --release --example bench >&2
{
  ./target/release/examples/bench --epochs "$E"
  bash tools/peers/run_all.sh
  ./target/release/examples/bench --epochs "$E"
} > "$OUT" 2> "$LOG"
python3 tools/peers/compare.py "$OUT"
