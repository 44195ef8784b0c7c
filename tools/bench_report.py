#!/usr/bin/env python3
"""The bench's table, its targets and its charts, from the runs tools/bench.sh recorded.

Usage: bench_report.py RUNS_JSONL [--smoke] [--charts DIR] [--failed SCENARIO,...]

Every target is a ratio or a count within one run, so a noisy machine moves both sides alike.
--smoke checks counts only (every vector verified, compression, dedup, token caps) and exits 1
when one is wrong; the full run prints each target as met or missed and always exits 0, because
a missed target is a finding for the report, not a broken bench.
"""
import argparse
import json
import math
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


def p50(run):
    return run["load"]["p50_ms"]


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


class sweep_point:
    """One sweep point: its direct and emr bursts (one each, or `sweep_repeats` each in turn).

    A path's p50 is the median of its bursts' p50s; its calls and its verification are the worst
    burst's, so repeating never hides a burst that cost too many calls or lost a vector."""

    def __init__(self, callers, direct, via):
        self.callers, self.direct, self.via = callers, direct, via
        self.direct_p50 = median([p50(r) for r in direct])
        self.p50 = median([p50(r) for r in via])
        self.calls = max(r["upstream"]["calls"] for r in via)
        self.max_batch = via[0]["max_batch"]
        self.verified = all(all_verified(r) for r in via)

    def ratio(self):
        return self.p50 / max(self.direct_p50, 1e-9)

    def ratios(self):
        """Each burst's emr p50 over its direct partner's, in the order they ran."""
        return [p50(v) / max(p50(d), 1e-9) for d, v in zip(self.direct, self.via)]


def sweep_points(runs, scenario):
    """The points of a sweep, fewest callers first."""
    sides = {}
    for r in runs:
        if r["scenario"] == scenario and r["path"] in ("direct", "emr"):
            sides.setdefault(int(r["label"]), {"direct": [], "emr": []})[r["path"]].append(r)
    return [sweep_point(n, s["direct"], s["emr"]) for n, s in sorted(sides.items())
            if s["direct"] and s["emr"]]


def p50_ratios(points):
    def one(p):
        if len(p.via) == 1:
            return f"{p.callers}: {p.ratio():.2f}"
        each = p.ratios()
        return f"{p.callers}: {p.ratio():.2f} ({min(each):.2f}-{max(each):.2f})"
    return ", ".join(one(p) for p in points)


def targets(runs):
    """(target, measured, met) for every target whose runs are present."""
    out = []

    def check(name, measured, met):
        out.append((name, measured, bool(met)))

    direct, burst = find(runs, "burst", "direct", "voyage-3.5"), find(runs, "burst", "emr")
    if burst:
        calls = burst["upstream"]["calls"]
        check("burst, unlimited model: <= 10 upstream calls, every vector correct",
              f"{calls} calls, {burst['load']['ok']}/{burst['load']['total']} verified",
              calls <= 10 and all_verified(burst))
        check("memory: emr peak RSS <= 150 MB during burst", f"{burst['emr_peak_rss_mb']:.0f} MB",
              burst["emr_peak_rss_mb"] <= 150)
    if direct and burst:
        ratio = p50(burst) / max(p50(direct), 1e-9)
        check("burst, unlimited model: emr p50 <= 1.1 x direct p50",
              f"{ratio:.2f}x ({p50(burst):.1f} vs {p50(direct):.1f} ms)", ratio <= 1.1)
    direct, via = find(runs, "burst_realistic", "direct"), find(runs, "burst_realistic", "emr")
    if direct and via:
        ratio = p50(via) / max(p50(direct), 1e-9)
        check("burst, realistic model: emr p50 <= 0.5 x direct p50",
              f"{ratio:.2f}x ({p50(via):.1f} vs {p50(direct):.1f} ms)", ratio <= 0.5)
        check("burst, realistic model: <= 10 upstream calls, every vector correct",
              f"{via['upstream']['calls']} calls, {via['load']['ok']}/{via['load']['total']} verified",
              via["upstream"]["calls"] <= 10 and all_verified(via))
    points = sweep_points(runs, "sweep")
    if points:
        def p50_limit(p):
            return 1.15 * p.direct_p50 + 2

        def calls_limit(p):
            return math.ceil(p.callers / p.max_batch) + 2

        bursts = len(points[0].via)
        each = f"median of {bursts} bursts per path, " if bursts > 1 else ""
        worst = max(points, key=lambda p: p.p50 - p50_limit(p))
        check("sweep, unlimited model: emr p50 <= 1.15 x direct p50 + 2 ms at every point",
              f"worst at N={worst.callers}: {worst.p50:.1f} ms vs limit {p50_limit(worst):.1f} "
              f"(direct {worst.direct_p50:.1f}); {each}ratios {p50_ratios(points)}",
              all(p.p50 <= p50_limit(p) for p in points))
        worst = max(points, key=lambda p: p.calls - calls_limit(p))
        check("sweep, unlimited model: emr upstream calls <= ceil(N / max batch) + 2 at every point",
              f"worst at N={worst.callers}: {worst.calls} calls vs limit "
              f"{calls_limit(worst)}; calls " + ", ".join(f"{p.callers}: {p.calls}" for p in points),
              all(p.calls <= calls_limit(p) and p.verified for p in points))
    direct, via = find(runs, "sparse", "direct"), find(runs, "sparse", "emr")
    if direct and via:
        added = via["load"]["p50_ms"] - direct["load"]["p50_ms"]
        check("sparse: emr p50 - direct p50 <= 2 ms", f"{added:+.2f} ms", added <= 2)
    direct, closed = find(runs, "closed", "direct"), find(runs, "closed", "emr")
    if direct and closed:
        ratio = p50(closed) / max(p50(direct), 1e-9)
        check("closed loop, unlimited model: emr p50 <= 1.3 x direct p50",
              f"{ratio:.2f}x ({p50(closed):.1f} vs {p50(direct):.1f} ms)", ratio <= 1.3)
    if closed:
        check("closed loop, unlimited model: <= 30 upstream calls", f"{closed['upstream']['calls']} calls",
              closed["upstream"]["calls"] <= 30 and all_verified(closed))
    for scenario, variant in (("rate", "learned"), ("rate_configured", "configured"),
                              ("rate_fleet", "configured, shared by 3 replicas")):
        direct, via = find(runs, scenario, "direct"), find(runs, scenario, "emr")
        if not (direct and via):
            continue
        success = via["load"]["ok"] / via["load"]["total"] if via["load"]["total"] else 0
        ratio = via["load"]["ok"] / max(direct["load"]["ok"], 1)
        name = f"rate-limited, limit {variant}"
        check(f"{name}: 100% success through emr",
              f"{100 * success:.2f}% ({via['load']['ok']}/{via['load']['total']})",
              via["load"]["total"] > 0 and via["load"]["ok"] == via["load"]["total"])
        check(f"{name}: no 429 reaches emr's callers", f"{caller_429s(via)} (direct: {caller_429s(direct)})",
              caller_429s(via) == 0)
        check(f"{name}: >= 10x the direct run's successes",
              f"{ratio:.1f}x ({via['load']['ok']} vs {direct['load']['ok']})", ratio >= 10)
        if scenario == "rate_fleet":
            refused = via["upstream"]["status_counts"].get("429", 0)
            check(f"{name}: the provider never refuses a call (never past its limit)",
                  f"{refused} refused of {via['upstream']['calls']} calls", refused == 0)
    direct, via = find(runs, "overhead", "direct", "single"), find(runs, "overhead", "emr", "single")
    if direct and via:
        p50_added = p50(via) - p50(direct)
        p99_added = via["load"]["p99_ms"] - direct["load"]["p99_ms"]
        check("lone caller: p50 added <= 1 ms", f"{p50_added:+.2f} ms", p50_added <= 1)
        check("lone caller: p99 added <= 2 ms", f"{p99_added:+.2f} ms", p99_added <= 2)
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
    direct = find(runs, "cache", "direct")
    first, second = find(runs, "cache", "emr", "first-pass"), find(runs, "cache", "emr", "second-pass")
    if first and second:
        check(f"cache: {second['load']['total']:,} distinct texts sent twice, second pass: 0 texts upstream",
              f"{second['upstream']['texts']} texts ({first['upstream']['texts']} on the first pass)",
              second["upstream"]["texts"] == 0 and all_verified(first) and all_verified(second))
    if direct and second:
        added = p50(second) - p50(direct)
        check("cache: second pass p50 <= 2 ms above direct to a fake answering at once",
              f"{added:+.2f} ms ({p50(second):.2f} vs {p50(direct):.2f} ms)", added <= 2)
    half = find(runs, "cache_half", "emr", "half-seen")
    if half:
        new = half["load"]["total"] // 2
        check(f"cache: half of {half['load']['total']:,} texts seen before: upstream texts = the {new:,} new ones",
              f"{half['upstream']['texts']} texts", half["upstream"]["texts"] == new and all_verified(half))
    idle, shared = find(runs, "fairness", "emr", "B-idle"), find(runs, "fairness", "emr", "B-with-A")
    if idle and shared:
        ratio = p50(shared) / max(p50(idle), 1e-9)
        check("fairness: B's p50 beside A's 100,000 queued texts <= 1.5 x its p50 on an idle emr",
              f"{ratio:.2f}x ({p50(shared):.1f} vs {p50(idle):.1f} ms)",
              ratio <= 1.5 and all_verified(idle) and all_verified(shared))
    alone, beside = find(runs, "fairness", "emr", "A-alone"), find(runs, "fairness", "emr", "A-with-B")
    if alone and beside:
        ratio = beside["load"]["throughput_rps"] / max(alone["load"]["throughput_rps"], 1e-9)
        check("fairness: A's throughput beside B >= 90% of A's alone",
              f"{100 * ratio:.0f}% ({beside['load']['throughput_rps'] * 2048:.0f} vs "
              f"{alone['load']['throughput_rps'] * 2048:.0f} texts/s)",
              ratio >= 0.9 and all_verified(alone) and all_verified(beside))
    off, bounded = find(runs, "cache_memory_off", "emr"), find(runs, "cache_memory", "emr")
    if off and bounded:
        limit = off["emr_peak_rss_mb"] + 32
        check("cache memory: peak RSS with a 32 MiB cache <= peak RSS with none + 32 MiB",
              f"{bounded['emr_peak_rss_mb']:.0f} MB vs {off['emr_peak_rss_mb']:.0f} + 32 MB",
              bounded["emr_peak_rss_mb"] <= limit and all_verified(off) and all_verified(bounded))
    return out


def information(runs):
    """(what, measured) rows with no target: the realistic model's sweep and closed loop."""
    out = []
    points = sweep_points(runs, "sweep_realistic")
    if points:
        out.append(("sweep, realistic model: emr p50 / direct p50", p50_ratios(points)))
        out.append(("sweep, realistic model: emr upstream calls",
                    ", ".join(f"{p.callers}: {p.calls}" for p in points)))
    direct = find(runs, "cache_stored", "direct")
    first, restarted = (find(runs, "cache_stored", "emr", "first-pass"),
                        find(runs, "cache_stored", "emr", "after-restart"))
    if direct and first and restarted:
        out.append(("cache in the store: after a restart, every text read back from SQLite",
                    f"{restarted['upstream']['texts']} texts upstream; p50 {p50(restarted):.2f} ms "
                    f"({p50(restarted) - p50(direct):+.2f} ms vs direct at once); first pass "
                    f"{first['emr_cpu_s']:.2f} s of emr CPU, after the restart "
                    f"{restarted['emr_cpu_s']:.2f} s"))
    direct, via = find(runs, "closed_realistic", "direct"), find(runs, "closed_realistic", "emr")
    if direct and via:
        out.append(("closed loop, realistic model: emr p50 / direct p50",
                    f"{p50(via) / max(p50(direct), 1e-9):.2f}x ({p50(via):.1f} vs {p50(direct):.1f} ms), "
                    f"{via['upstream']['calls']} upstream calls"))
    return out


def smoke_failures(runs):
    """Counts that must hold at any size: the smoke run's assertions."""
    failures = []
    for r in runs:
        if r["path"] == "emr" and not all_verified(r):
            failures.append(f"{r['scenario']}: {r['load']['total'] - r['load']['ok']} of "
                            f"{r['load']['total']} callers failed through emr: {r['load']['errors']}")
    for scenario in ("burst", "burst_realistic"):
        burst_direct, burst = find(runs, scenario, "direct"), find(runs, scenario, "emr")
        if burst and burst_direct and burst["upstream"]["calls"] * 5 > burst_direct["upstream"]["calls"]:
            failures.append(f"{scenario}: {burst['upstream']['calls']} upstream calls through emr for "
                            f"{burst_direct['upstream']['calls']} direct; expected at least 5x fewer")
    for scenario in ("rate", "rate_configured", "rate_fleet"):
        rate = find(runs, scenario, "emr")
        if rate and caller_429s(rate):
            failures.append(f"{scenario}: {caller_429s(rate)} 429s reached emr's callers")
    dedup = find(runs, "dedup", "emr")
    if dedup and dedup["upstream"]["texts"] != 10:
        failures.append(f"dedup: {dedup['upstream']['texts']} texts sent upstream, expected 10")
    tokens = find(runs, "tokens", "emr")
    if tokens and tokens["upstream"]["status_counts"].get("400", 0):
        failures.append(f"tokens: {tokens['upstream']['status_counts']['400']} calls over the token cap")
    second = find(runs, "cache", "emr", "second-pass")
    if second and second["upstream"]["texts"] != 0:
        failures.append(f"cache: {second['upstream']['texts']} texts sent upstream on the second pass, expected 0")
    restarted = find(runs, "cache_stored", "emr", "after-restart")
    if restarted and restarted["upstream"]["texts"] != 0:
        failures.append(f"cache_stored: {restarted['upstream']['texts']} texts sent upstream after "
                        "the restart, expected 0")
    half = find(runs, "cache_half", "emr", "half-seen")
    if half and half["upstream"]["texts"] != half["load"]["total"] // 2:
        failures.append(f"cache_half: {half['upstream']['texts']} texts sent upstream, expected "
                        f"{half['load']['total'] // 2}")
    return failures


def latencies(run):
    with open(run["latencies"]) as f:
        return sorted(float(line) for line in f if line.strip())


def render_charts(runs, directory):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(18, 4.5))
    panels = ((axes[0], ("burst",), "burst: 1,000 concurrent callers, unlimited model"),
              (axes[1], ("burst_realistic",), "burst: 1,000 concurrent callers, realistic model"),
              (axes[2], ("rate", "rate_configured", "rate_fleet"), "rate-limited: 200 callers, 600 rpm"))
    for ax, scenarios, title in panels:
        for r in runs:
            if r["scenario"] not in scenarios:
                continue
            values = latencies(r)
            if not values:
                continue
            share = [100.0 * (i + 1) / len(values) for i in range(len(values))]
            ok = r["load"]["ok"]
            variant = {"rate_configured": " configured",
                       "rate_fleet": " fleet of 3"}.get(r["scenario"], "")
            ax.plot(values, share,
                    label=f"{r['path']}{variant} ({r['label']}, {ok}/{r['load']['total']} ok)")
        ax.set_title(title)
        ax.set_xlabel("caller latency, ms")
        ax.set_ylabel("% of callers answered")
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{directory}/bench-latency.png", dpi=110)

    sweeps = {scenario: sweep_points(runs, scenario) for scenario in ("sweep", "sweep_realistic")}
    if any(sweeps.values()):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for scenario, points in sweeps.items():
            if not points:
                continue
            xs = [p.callers for p in points]
            model = "realistic" if scenario == "sweep_realistic" else "unlimited"
            style = "--" if model == "realistic" else "-"
            direct_calls = [max(r["upstream"]["calls"] for r in p.direct) for p in points]
            for path, calls, p50s in (("direct", direct_calls, [p.direct_p50 for p in points]),
                                      ("emr", [p.calls for p in points], [p.p50 for p in points])):
                label = f"{path}, {model} model"
                axes[0].plot(xs, calls, style, marker="o", label=label)
                axes[1].plot(xs, p50s, style, marker="o", label=label)
        for ax, label in ((axes[0], "upstream calls"), (axes[1], "caller p50, ms")):
            ax.set_xscale("log")
            ax.set_xlabel("concurrent callers (one burst; p50: median of the repeats)")
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
    parser.add_argument("--failed", default="", help="scenarios that failed to run")
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
    for scenario in filter(None, args.failed.split(",")):
        print(f"MISSED  {scenario}: not measured, the scenario failed to run")
    for name, measured in information(runs):
        print(f"info    {name}: {measured}")
    if args.charts:
        render_charts(runs, args.charts)
        print(f"\ncharts: {args.charts}/bench-latency.png, {args.charts}/bench-concurrency.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
