#!/usr/bin/env python3
"""Runs the alloc_overhead bench binaries of two or more builds alternately,
so that designs of the tracker are compared under the same machine load.

Each round runs the `system`, `sampled` and `every` children of each binary
in turn (or the modes given with --modes, the first being the baseline); it
prints medians and each mode's ratio against the baseline of the same
binary (wall and thread CPU time, the median of the per-round CPU ratios,
and the fastest run's: on a noisy machine the fastest of many short runs is
the steadiest figure). Figures only: nothing is asserted.

    # the bench binary of another commit, built apart from this tree:
    git worktree add /tmp/old <commit>
    (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target \\
        cargo bench -p heapdump --bench alloc_overhead --no-run)
    cargo bench -p heapdump --bench alloc_overhead --no-run
    crates/heapdump/benches/compare_builds.py \\
        old=/tmp/old-target/release/deps/alloc_overhead-<hash> \\
        new=target/release/deps/alloc_overhead-<hash> [--threads 2] [--rounds 7] \\
        [--workload micro|service] [--by-mode]

    # where the cost is: the tracker against stripped-down builds of itself
    # (patches made against commit 95ee89d's tracker.rs):
    git worktree add --detach /tmp/pass HEAD
    (cd /tmp/pass && git apply crates/heapdump/benches/variants/pass-through.patch && \\
        CARGO_TARGET_DIR=/tmp/pass-target cargo bench -p heapdump --bench alloc_overhead --no-run)
    (likewise header-only.patch), then compare all three with --rounds 31 --ops 300000.

    # prototypes of other ways of recording blocks, as extra modes of one
    # bench binary (header-less-prototypes.patch; see docs/PERFORMANCE.md):
    git worktree add --detach /tmp/proto HEAD
    (cd /tmp/proto && git apply crates/heapdump/benches/variants/header-less-prototypes.patch && \\
        CARGO_TARGET_DIR=/tmp/proto-target cargo bench -p heapdump --bench alloc_overhead --no-run)
    crates/heapdump/benches/compare_builds.py proto=/tmp/proto-target/release/deps/alloc_overhead-<hash> \\
        --modes system,count,nobusy,shadow,log,sampled --rounds 21 --ops 1000000
"""
import argparse
import os
import re
import statistics
import subprocess

MODES = ["system", "sampled", "every"]


def run(binary, mode, threads, ops, workload):
    env = dict(os.environ, HEAPDUMP_BENCH_MODE=mode, HEAPDUMP_BENCH_WORKLOAD=workload,
               HEAPDUMP_BENCH_THREADS=str(threads), HEAPDUMP_BENCH_OPS=str(ops))
    env.pop("HEAPDUMP_SAMPLE_RATE", None)
    out = subprocess.run([binary], env=env, capture_output=True, text=True, check=True).stdout
    found = re.search(r"ns_per_op=([\d.]+) cpu_ns_per_op=([\d.]+)", out)
    if not found:
        raise SystemExit(f"{binary} {mode}: no RESULT line in:\n{out}")
    return float(found.group(1)), float(found.group(2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("builds", nargs="+", metavar="NAME=BINARY")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=2_000_000)
    parser.add_argument("--workload", choices=["micro", "service"], default="micro")
    parser.add_argument("--modes", default=",".join(MODES),
                        help="comma-separated HEAPDUMP_BENCH_MODE values; the first is the baseline")
    parser.add_argument("--by-mode", action="store_true",
                        help="run each mode of every build back to back (order alternating by "
                        "round) and also compare each build with the first, mode by mode")
    args = parser.parse_args()
    builds = dict(build.split("=", 1) for build in args.builds)
    modes = args.modes.split(",")
    results = {}
    for round_index in range(args.rounds):
        if args.by_mode:
            names = list(builds) if round_index % 2 == 0 else list(builds)[::-1]
            order = [(name, mode) for mode in modes for name in names]
        else:
            order = [(name, mode) for name in builds for mode in modes]
        for name, mode in order:
            results.setdefault((name, mode), []).append(
                run(builds[name], mode, args.threads, args.ops, args.workload))
    load = open("/proc/loadavg").read().split()[:3]
    print(f"workload={args.workload} threads={args.threads} rounds={args.rounds} ops={args.ops} "
          f"load average after: {' '.join(load)}")
    for name in builds:
        base = results[(name, modes[0])]
        base_wall = statistics.median(wall for wall, _ in base)
        base_cpu = statistics.median(cpu for _, cpu in base)
        for mode in modes:
            runs = results[(name, mode)]
            wall = statistics.median(wall for wall, _ in runs)
            cpu = statistics.median(cpu for _, cpu in runs)
            per_round = statistics.median(run[1] / ref[1] for run, ref in zip(runs, base))
            # The fastest run is the one least disturbed by other load.
            best = min(cpu for _, cpu in runs)
            best_base = min(cpu for _, cpu in base)
            print(f"{name:10} {mode:8} wall {wall:6.1f} ns/op ({wall / base_wall:.2f}x)  "
                  f"cpu {cpu:6.1f} ns/op ({cpu / base_cpu:.2f}x, per-round {per_round:.2f}x)  "
                  f"fastest {best:6.1f} ns/op ({best / best_base:.2f}x)")
    if args.by_mode:
        # Same mode, adjacent runs: how each build compares with the first.
        # The baseline mode runs the same code in every build, so its ratio
        # shows what the binaries' layout alone does (up to 0.91x here).
        first = next(iter(builds))
        for name in list(builds)[1:]:
            ratios = "  ".join(
                f"{mode} {statistics.median(a[1] / b[1] for a, b in zip(results[(name, mode)], results[(first, mode)])):.3f}x"
                for mode in modes)
            print(f"{name:10} vs {first}, cpu per round: {ratios}")


if __name__ == "__main__":
    main()
