#!/usr/bin/env python3
"""The comparison table of brick and its peers from one run's JSON lines.

Usage: python3 tools/peers/compare.py bench-results.jsonl
Each figure is the median over the runs in the file (brick runs twice in bench_compare.sh);
ratios are peer / brick (above 1: brick is faster or smaller).
"""
import json
import statistics
import sys


def load(path):
    rows = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def pick(rows, bench, key, **match):
    vals = [r[key] for r in rows if r.get("bench") == bench and key in r
            and all(r.get(k) == v for k, v in match.items())]
    return statistics.median(vals) if vals else None


COLUMNS = [
    ("Keras (TF)", dict(framework="keras", backend="tensorflow", jit_compile_arg="auto")),
    ("Keras (JAX)", dict(framework="keras", backend="jax")),
    ("PyTorch, 2 threads", dict(framework="torch", threads=2)),
    ("JAX, jitted step", dict(framework="jax", variant="jit_step")),
    ("JAX, epoch in one scan", dict(framework="jax", variant="jit_scan")),
]

WORKS = [
    # (label, bench, key, extra match, unit, scale)
    ("MNIST MLP epoch (median of epochs 2-4)", "mnist_mlp", "epoch_rest_median_s", {}, "s", 1),
    ("XOR training step", "xor_tiny", "us_per_step", {}, "us", 1),
    ("Iris 200 epochs, total", "iris_mlp", "total_s", {}, "s", 1),
    ("peak memory of the MNIST run", "mnist_mlp", "peak_rss_mib", {}, "MiB", 1),
]


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "us":
        return f"{v:.1f} us"
    if unit == "MiB":
        return f"{v:.0f} MiB"
    return f"{v:.3f} s"


def main():
    rows = load(sys.argv[1])
    print("| work | " + " | ".join(c for c, _ in COLUMNS) + " | brick | fastest peer / brick |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    for label, bench, key, extra, unit, _ in WORKS:
        cells, peers = [], []
        for _, match in COLUMNS:
            m = dict(match)
            if bench == "xor_tiny":
                # Keras: its train_on_batch loop; PyTorch: its eager loop; JAX: as named.
                if m.get("framework") == "keras":
                    m["variant"] = "train_on_batch"
            v = pick(rows, bench, key, **m)
            cells.append(fmt(v, unit))
            if v is not None:
                peers.append(v)
        brick_match = {"framework": "brick"}
        if bench == "xor_tiny":
            brick_match["variant"] = "train_on_batch"
        b = pick(rows, bench, key, **brick_match)
        ratio = f"{min(peers) / b:.2f}x" if peers and b else "-"
        print(f"| {label} | " + " | ".join(cells) + f" | {fmt(b, unit)} | {ratio} |")
    mlp_floor(rows)
    convnet(rows)
    if not any(r.get("bench") == "sgemm" for r in rows):
        return  # a run without the matmul benchmark (BENCHES without sgemm)
    print()
    print("| matmul, 2 threads (GFLOP/s, median) | numpy | PyTorch | JAX | brick | brick / best |")
    print("|---|---|---|---|---|---|")
    for m, k, n, layout in [(128, 784, 512, "nn"), (784, 128, 512, "tn"), (128, 512, 10, "nn")]:
        vals = {lib: pick(rows, "sgemm", "gflops_median", lib=lib, threads=2, m=m, k=k, n=n, layout=layout)
                for lib in ("numpy", "torch", "jax", "brick")}
        peers = [v for lib, v in vals.items() if lib != "brick" and v is not None]
        cells = " | ".join("-" if v is None else f"{v:.1f}" for v in vals.values())
        b = vals["brick"]
        ratio = f"{b / max(peers):.0%}" if b and peers else "-"
        print(f"| [{m},{k}]x[{k},{n}] {layout} | {cells} | {ratio} |")


def mlp_floor(rows):
    """Where brick ran, and its MNIST MLP epoch against the floor: the epoch's matrix-product
    FLOPs at the GEMM rate brick measured in the same process."""
    brick = [r for r in rows if r.get("framework") == "brick" and r.get("cpu")]
    if brick:
        print()
        print(f"brick ran on: {brick[0]['cpu']}, SIMD level {brick[0].get('simd', '-')}, "
              f"{brick[0].get('threads', '-')} threads")
    floor = pick(rows, "mnist_mlp", "floor_s", framework="brick")
    if floor is None:
        return
    gflop = pick(rows, "mnist_mlp", "gflop_per_epoch", framework="brick")
    gemm = pick(rows, "mnist_mlp", "gemm_gflops", framework="brick")
    x_floor = pick(rows, "mnist_mlp", "x_floor", framework="brick")
    print(f"MNIST MLP floor: {gflop:.1f} GFLOP at brick's GEMM rate of {gemm:.0f} GFLOP/s "
          f"([128, 784] @ [784, 512]) = {floor:.3f} s; brick's epoch is {x_floor:.2f}x it")
    after = pick(rows, "mnist_mlp", "gemm_gflops_after", framework="brick")
    if after is not None and abs(after - gemm) > 0.1 * gemm:
        print(f"  not steady: the GEMM rate was {after:.0f} GFLOP/s after training "
              f"(the machine's speed changed during the run; measure again)")
    trips = pick(rows, "mnist_mlp", "core_round_trip_ns", framework="brick")
    if trips is not None and pick(rows, "mnist_mlp", "split_caches", framework="brick"):
        print(f"  split caches: a round trip between the two cores took {max(trips):.0f} ns "
              f"(about 120 when they share a cache); compare only with runs that were split too")


def convnet(rows):
    """The keras.io MNIST convnet: epoch (median of epochs 2 on), peak memory, and brick's
    epoch as a multiple of its floor (the epoch's FLOPs at the GEMM rate of the same run)."""
    def peer(fw, backend=None):
        runs = [r for r in rows if r.get("work") == "speed" and r.get("fw") == fw
                and (backend is None or r.get("backend") == backend)]
        if not runs:
            return None, None
        epochs = [e for r in runs for e in r["epoch_s"][1:]]
        return statistics.median(epochs), statistics.median(r["peak_rss_mib"] for r in runs)
    peers = [("Keras (TF)", peer("keras", "tensorflow")), ("Keras (JAX)", peer("keras", "jax")),
             ("PyTorch, 2 threads", peer("torch"))]
    b = pick(rows, "mnist_convnet", "epoch_rest_median_s", framework="brick")
    if b is None and all(p[0] is None for _, p in peers):
        return
    b_mem = pick(rows, "mnist_convnet", "peak_rss_mib", framework="brick")
    x_floor = pick(rows, "mnist_convnet", "x_floor", framework="brick")
    print()
    print("| MNIST convnet | " + " | ".join(c for c, _ in peers)
          + " | brick | fastest peer / brick | brick / floor |")
    print("|---" * (len(peers) + 4) + "|")
    times = [p[0] for _, p in peers if p[0] is not None]
    ratio = f"{min(times) / b:.2f}x" if times and b else "-"
    floor = f"{x_floor:.2f}x" if x_floor else "-"
    print("| epoch (median of epochs 2-3) | " + " | ".join(fmt(p[0], "s") for _, p in peers)
          + f" | {fmt(b, 's')} | {ratio} | {floor} |")
    mems = [p[1] for _, p in peers if p[1] is not None]
    mratio = f"{min(mems) / b_mem:.2f}x" if mems and b_mem else "-"
    print("| peak memory | " + " | ".join(fmt(p[1], "MiB") for _, p in peers)
          + f" | {fmt(b_mem, 'MiB')} | {mratio} | |")


if __name__ == "__main__":
    main()
