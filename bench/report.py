#!/usr/bin/env python3
"""Turns bench/loadtest.py's JSON lines into a markdown table and a PNG of CPU and RSS per target
count (the scale curve in docs/benchmarks.md).

  report.py RESULTS.jsonl [--machine FILE] [--markdown OUT.md] [--plot OUT.png]
"""

import argparse
import json
import pathlib


def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def table(rows):
    head = ("| targets | interval | profiles/s | CPU cores | CPU s / 1,000 profiles | profiles/s per core "
            "| RSS steady | RSS peak | delta state | lateness p50 / p99 | delivery p50 / p99 | dropped |")
    lines = [head, "|" + "|".join(["---:"] * 12) + "|"]
    for r in rows:
        lines.append(
            f"| {r['targets']:,} | {r['interval_s']} s | {fmt(r['profiles_forwarded_per_s'], 1)} "
            f"| {fmt(r['cpu_cores'], 3)} | {fmt(r['cpu_s_per_1000_profiles'], 3)} "
            f"| {fmt(r['profiles_per_core_s'], 0)} | {fmt(r['rss_steady_mib'], 1)} MiB "
            f"| {fmt(r['rss_peak_mib'], 1)} MiB | {fmt(r.get('delta_state_mib'), 1)} MiB "
            f"| {fmt(r['lateness_p50_s'], 3)} / {fmt(r['lateness_p99_s'], 3)} s "
            f"| {fmt(r['delivery_latency_p50_s'], 3)} / {fmt(r['delivery_latency_p99_s'], 3)} s "
            f"| {r['dropped']} |")
    return "\n".join(lines)


def stage_table(rows):
    stages = sorted({s for r in rows for s in r.get("stage_cpu_s_per_1000_profiles", {})})
    threads = sorted({t for r in rows for t in r.get("thread_cpu_s_per_1000_profiles", {})})
    head = "| targets | " + " | ".join(stages) + " | " + " | ".join(f"thread {t}" for t in threads) + " |"
    lines = [head, "|" + "|".join(["---:"] * (1 + len(stages) + len(threads))) + "|"]
    for r in rows:
        cells = [fmt(r.get("stage_cpu_s_per_1000_profiles", {}).get(s), 3) for s in stages]
        cells += [fmt(r.get("thread_cpu_s_per_1000_profiles", {}).get(t), 3) for t in threads]
        lines.append(f"| {r['targets']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["targets"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(xs, [r["cpu_s_per_1000_profiles"] for r in rows], "o-", label="CPU s per 1,000 profiles")
    ax1.plot(xs, [r["cpu_cores"] for r in rows], "s--", label="CPU cores used")
    ax1.set_xscale("log")
    ax1.set_xlabel("targets")
    ax1.set_title("pprofd CPU")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend()
    ax2.plot(xs, [r["rss_steady_mib"] for r in rows], "o-", label="RSS steady (MiB)")
    ax2.plot(xs, [r["rss_peak_mib"] for r in rows], "s--", label="RSS peak (MiB)")
    ax2.plot(xs, [r.get("delta_state_mib", 0) for r in rows], "^:", label="of which delta baselines (MiB)")
    ax2.set_xscale("log")
    ax2.set_xlabel("targets")
    ax2.set_title("pprofd memory")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend()
    for ax in (ax1, ax2):
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--machine", default="")
    ap.add_argument("--markdown", default="")
    ap.add_argument("--plot", default="")
    args = ap.parse_args()
    rows = [json.loads(line) for line in pathlib.Path(args.results).read_text().splitlines() if line.strip()]
    rows.sort(key=lambda r: r["targets"])
    text = ""
    if args.machine:
        text += "```\n" + pathlib.Path(args.machine).read_text() + "```\n\n"
    text += table(rows) + "\n\nPer-stage and per-thread CPU, seconds per 1,000 forwarded profiles:\n\n"
    text += stage_table(rows) + "\n"
    print(text)
    if args.markdown:
        pathlib.Path(args.markdown).write_text(text)
    if args.plot and len(rows) > 1:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
