#!/usr/bin/env python3
"""The bench's table, its targets and its charts, from the runs tools/bench.sh recorded.

Usage: bench_report.py RUNS_JSONL [--smoke] [--charts DIR]

Every target is a ratio or a count within one run, so a noisy machine moves both sides alike.
--smoke checks counts only (every vector verified, compression, dedup, token caps) and exits 1
when one is wrong; the full run prints each target as met or missed and always exits 0, because
a missed target is a finding for the report, not a broken bench.
"""
import argparse
import json
import sys


def load_runs(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def find(runs, scenario, path, label=None):
    for r in runs:
        if r["scenario"] == scenario and r["path"] == path and (label is None or r["label"] == label):
            return r
    return None


def caller_429s(run):
    """429s the callers saw: the ones they retried and the ones they were left with."""
    return run["load"]["retries"] + run["load"]["status_counts"].get("429", 0)


def table(runs):
    header = ("scenario", "path", "load", "requests", "ok %", "up calls", "up texts", "compr.",
              "p50 ms", "p95 ms", "p99 ms", "req/s", "emr cpu s", "emr rss MB")
    rows = [header]
    for r in runs:
        load, up = r["load"], r["upstream"]
        via_emr = r["path"] == "emr"
        rows.append((
            r["scenario"], r["path"], r["label"], str(load["total"]),
            f"{100.0 * load['ok'] / load['total']:.1f}" if load["total"] else "-",
            str(up["calls"]), str(up["texts"]),
            f"{load['total'] / up['calls']:.1f}x" if up["calls"] else "-",
            f"{load['p50_ms']:.2f}", f"{load['p95_ms']:.2f}", f"{load['p99_ms']:.2f}",
            f"{load['throughput_rps']:.0f}",
            f"{r['emr_cpu_s']:.2f}" if via_emr else "",
            f"{r['emr_peak_rss_mb']:.0f}" if via_emr else ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def all_verified(run):
    return run["load"]["ok"] == run["load"]["total"] and run["load"]["wrong_vectors"] == 0


def targets(runs):
    """(target, measured, met) for every target whose runs are present."""
    out = []

    def check(name, measured, met):
        out.append((name, measured, bool(met)))

    burst = find(runs, "burst", "emr")
    if burst:
        calls = burst["upstream"]["calls"]
        check("burst: <= 10 upstream calls, every vector correct",
              f"{calls} calls, {burst['load']['ok']}/{burst['load']['total']} verified",
              calls <= 10 and all_verified(burst))
        check("memory: emr peak RSS <= 150 MB during burst", f"{burst['emr_peak_rss_mb']:.0f} MB",
              burst["emr_peak_rss_mb"] <= 150)
    direct, via = find(runs, "sparse", "direct"), find(runs, "sparse", "emr")
    if direct and via:
        added = via["load"]["p50_ms"] - direct["load"]["p50_ms"]
        check("sparse: emr p50 - direct p50 <= 2 ms", f"{added:+.2f} ms", added <= 2)
    closed = find(runs, "closed", "emr")
    if closed:
        check("closed-loop: <= 30 upstream calls", f"{closed['upstream']['calls']} calls",
              closed["upstream"]["calls"] <= 30 and all_verified(closed))
    direct, via = find(runs, "rate", "direct"), find(runs, "rate", "emr")
    if direct and via:
        success = via["load"]["ok"] / via["load"]["total"] if via["load"]["total"] else 0
        ratio = via["load"]["ok"] / max(direct["load"]["ok"], 1)
        check("rate-limited: >= 99.9% success through emr", f"{100 * success:.2f}%", success >= 0.999)
        check("rate-limited: no 429 reaches emr's callers", f"{caller_429s(via)} (direct: {caller_429s(direct)})",
              caller_429s(via) == 0)
        check("rate-limited: >= 10x the direct run's successes",
              f"{ratio:.1f}x ({via['load']['ok']} vs {direct['load']['ok']})", ratio >= 10)
    direct, via = find(runs, "overhead", "direct", "single"), find(runs, "overhead", "emr", "single")
    if direct and via:
        p50 = via["load"]["p50_ms"] - direct["load"]["p50_ms"]
        p99 = via["load"]["p99_ms"] - direct["load"]["p99_ms"]
        check("overhead: single caller p50 added <= 1 ms", f"{p50:+.2f} ms", p50 <= 1)
        check("overhead: single caller p99 added <= 3 ms", f"{p99:+.2f} ms", p99 <= 3)
    via, peer = find(runs, "overhead", "emr", "64-callers"), find(runs, "overhead", "portkey", "64-callers")
    if via and peer:
        ratio = via["load"]["throughput_rps"] / max(peer["load"]["throughput_rps"], 1e-9)
        check("overhead: 64 callers >= 3x Portkey's throughput",
              f"{ratio:.1f}x ({via['load']['throughput_rps']:.0f} vs {peer['load']['throughput_rps']:.0f} req/s)",
              ratio >= 3 and all_verified(via))
    dedup = find(runs, "dedup", "emr")
    if dedup:
        check("dedup: 10 texts sent upstream", f"{dedup['upstream']['texts']} texts",
              dedup["upstream"]["texts"] == 10 and all_verified(dedup))
    tokens = find(runs, "tokens", "emr")
    if tokens:
        rejected = tokens["upstream"]["status_counts"].get("400", 0)
        check("tokens: zero token-cap rejections", f"{rejected} rejected, {tokens['upstream']['calls']} calls",
              rejected == 0 and all_verified(tokens))
    return out


def smoke_failures(runs):
    """Counts that must hold at any size: the smoke run's assertions."""
    failures = []
    for r in runs:
        if r["path"] == "emr" and not all_verified(r):
            failures.append(f"{r['scenario']}: {r['load']['total'] - r['load']['ok']} of "
                            f"{r['load']['total']} callers failed through emr: {r['load']['errors']}")
    burst_direct, burst = find(runs, "burst", "direct"), find(runs, "burst", "emr")
    if burst and burst_direct and burst["upstream"]["calls"] * 5 > burst_direct["upstream"]["calls"]:
        failures.append(f"burst: {burst['upstream']['calls']} upstream calls through emr for "
                        f"{burst_direct['upstream']['calls']} direct; expected at least 5x fewer")
    rate = find(runs, "rate", "emr")
    if rate and caller_429s(rate):
        failures.append(f"rate: {caller_429s(rate)} 429s reached emr's callers")
    dedup = find(runs, "dedup", "emr")
    if dedup and dedup["upstream"]["texts"] != 10:
        failures.append(f"dedup: {dedup['upstream']['texts']} texts sent upstream, expected 10")
    tokens = find(runs, "tokens", "emr")
    if tokens and tokens["upstream"]["status_counts"].get("400", 0):
        failures.append(f"tokens: {tokens['upstream']['status_counts']['400']} calls over the token cap")
    return failures


def latencies(run):
    with open(run["latencies"]) as f:
        return sorted(float(line) for line in f if line.strip())


def render_charts(runs, directory):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, scenario, title in ((axes[0], "burst", "burst: 1,000 concurrent callers"),
                                (axes[1], "rate", "rate-limited: 200 callers, 600 rpm")):
        for r in runs:
            if r["scenario"] != scenario:
                continue
            values = latencies(r)
            if not values:
                continue
            share = [100.0 * (i + 1) / len(values) for i in range(len(values))]
            ok = r["load"]["ok"]
            ax.plot(values, share, label=f"{r['path']} ({r['label']}, {ok}/{r['load']['total']} ok)")
        ax.set_title(title)
        ax.set_xlabel("caller latency, ms")
        ax.set_ylabel("% of callers answered")
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{directory}/bench-latency.png", dpi=110)

    sweep = {path: sorted(((int(r["label"]), r) for r in runs
                           if r["scenario"] == "sweep" and r["path"] == path), key=lambda x: x[0])
             for path in ("direct", "emr")}
    if sweep["emr"]:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for path, points in sweep.items():
            xs = [n for n, _ in points]
            axes[0].plot(xs, [r["upstream"]["calls"] for _, r in points], marker="o", label=path)
            axes[1].plot(xs, [r["load"]["p50_ms"] for _, r in points], marker="o", label=path)
        for ax, label in ((axes[0], "upstream calls"), (axes[1], "caller p50, ms")):
            ax.set_xscale("log")
            ax.set_xlabel("concurrent callers (one burst)")
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        axes[0].set_yscale("log")
        fig.tight_layout()
        fig.savefig(f"{directory}/bench-concurrency.png", dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--charts")
    args = parser.parse_args()
    runs = load_runs(args.runs)
    print()
    print(table(runs))
    if args.smoke:
        failures = smoke_failures(runs)
        print()
        for f in failures:
            print(f"FAIL {f}")
        print("smoke: every count holds" if not failures else f"smoke: {len(failures)} failed")
        return 1 if failures else 0
    print()
    for name, measured, met in targets(runs):
        print(f"{'met   ' if met else 'MISSED'}  {name}: {measured}")
    if args.charts:
        render_charts(runs, args.charts)
        print(f"\ncharts: {args.charts}/bench-latency.png, {args.charts}/bench-concurrency.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
