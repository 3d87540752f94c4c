#!/usr/bin/env bash
# brick against Keras, PyTorch and JAX on this machine, in one run; prints the comparison.
# Run by hand (never by CI): it needs the peers' virtualenv (tools/peers/setup_venv.sh,
# about 7 GiB) and takes about 15 minutes per round.
#
#   bash tools/peers/setup_venv.sh            # once: VENV=$HOME/.venvs/peers
#   bash tools/bench_compare.sh               # results in bench-results.jsonl, table on stdout
#
# brick's benchmark runs before the peers and after each round of them; the table shows
# the median of all runs. Shared machines change speed from minute to minute, so for a
# headline figure take several rounds of one work, for example:
#
#   ROUNDS=4 BENCHES="env mnist_mlp" BRICK_BENCH=mnist_mlp \
#     KERAS_VARIANTS="jax:auto" TORCH_THREADS=2 bash tools/bench_compare.sh
#
# Environment: ROUNDS (default 1), BRICK_BENCH (brick's --bench, default all), E (epochs,
# default 4), OUT and LOG (output files), PY (the peers' python); the peer scripts read the
# variables listed at the top of tools/peers/run_all.sh (BENCHES, FRAMEWORKS, ...).
# CONVNET (default "torch keras:tensorflow keras:jax"; empty to skip) lists the peers that
# train the keras.io MNIST convnet (tools/peers/bench_convnet.py --work speed, 3 epochs of
# N=60000 rows; Keras on JAX takes about 50 s per epoch).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench-results.jsonl}"
LOG="${LOG:-bench-results.log}"
ROUNDS="${ROUNDS:-1}"
BRICK_BENCH="${BRICK_BENCH:-all}"
export PY="${PY:-$HOME/.venvs/peers/bin/python}"
export E="${E:-4}"
cargo build --release --example bench >&2
CONVNET="${CONVNET-torch keras:tensorflow keras:jax}"
brick() { ./target/release/examples/bench --bench "$BRICK_BENCH" --epochs "$E"; }
convnet_peers() {
  for peer in $CONVNET; do
    fw="${peer%%:*}"
    backend="${peer#*:}"
    [ "$backend" = "$peer" ] && backend=jax
    "$PY" tools/peers/bench_convnet.py --fw "$fw" --backend "$backend" --work speed \
      --n "${N:-60000}" --epochs 3 --threads 2
  done
}
{
  brick
  for _ in $(seq 1 "$ROUNDS"); do
    bash tools/peers/run_all.sh
    convnet_peers
    brick
  done
} > "$OUT" 2> "$LOG"
python3 tools/peers/compare.py "$OUT"
