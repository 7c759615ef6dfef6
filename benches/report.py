#!/usr/bin/env python3
"""Turns criterion's results into the performance tables of benches/README.md and the chart.

Usage, after `cargo bench --manifest-path benches/Cargo.toml` (default
target) and, for the native run,
`CARGO_TARGET_DIR=benches/target/native RUSTFLAGS="-C target-cpu=native" cargo bench --manifest-path benches/Cargo.toml`:

    python3 benches/report.py                    # table to stdout, chart to benches/throughput.svg
    python3 benches/report.py DIR [LABEL] ...    # other criterion directories

Each run is read from DIR (default: benches/target/criterion labelled
"default" and benches/target/native/criterion labelled "native", where
present). Throughput is
the median time of a benchmark turned into elements per second; ratios
compare benchmarks of the same run. Standard library only.
"""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PS = ["0.1", "0.5", "0.9"]


def load(directory):
    """{(n, function, p or None): elements per second} from a criterion dir."""
    results = {}
    for bench in Path(directory).glob("**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        group = meta["group_id"]
        if not group.startswith("n="):
            continue
        n = int(group[2:])
        seconds = estimates["median"]["point_estimate"] * 1e-9
        results[(n, meta["function_id"], meta.get("value_str"))] = n / seconds
    return results


def size_label(n):
    return f"{n >> 20} Mi" if n >= 1 << 20 else f"{n >> 10} Ki"


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_flags():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return ", ".join(f for f in ["sse2", "avx2", "avx512f"] if f in flags)
    except OSError:
        pass
    return "unknown"


def table(label, r):
    g = lambda v: f"{v / 1e9:.2f}"
    lines = [
        f"**{label}**",
        "",
        "| size | p | `x *= s` | forward keyed | ratio | forward rng | ratio | handwritten | keyed / handwritten | with mask / forward | mask only keyed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in sorted({k[0] for k in r}):
        floor = r.get((n, "floor x*=s", None))
        for p in PS:
            get = lambda f: r.get((n, f, p))
            fwd, rng, hand = get("forward keyed"), get("forward rng"), get("handwritten")
            mask, only = get("forward_with_mask keyed"), get("fill_mask keyed")
            if None in (floor, fwd, rng, hand, mask, only):
                continue
            lines.append(
                f"| {size_label(n)} | {p} | {g(floor)} | {g(fwd)} | {fwd / floor:.2f} | {g(rng)} | {rng / floor:.2f} "
                f"| {g(hand)} | {fwd / hand:.1f} | {mask / fwd:.2f} | {g(only)} |"
            )
    lines += ["", "Throughput in G elements per second (mask only: G decisions per second), medians.", ""]
    return "\n".join(lines)


def all_operations(label, r):
    functions = sorted({k[1] for k in r if k[2] is not None})
    lines = [f"<details><summary>Every operation, {label} (G elements per second)</summary>", ""]
    lines.append("| size | p | " + " | ".join(functions) + " |")
    lines.append("|---|---|" + "---|" * len(functions))
    for n in sorted({k[0] for k in r}):
        for p in PS:
            cells = [f"{r[(n, f, p)] / 1e9:.2f}" if (n, f, p) in r else "" for f in functions]
            lines.append(f"| {size_label(n)} | {p} | " + " | ".join(cells) + " |")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def chart(runs, path):
    """Throughput against size, log-log, as a self-contained SVG."""
    import math

    width, height, left, right, top, bottom = 760, 440, 70, 230, 30, 50
    sizes = sorted({k[0] for _, r in runs for k in r})
    if not sizes:
        return
    series = []
    colours = {"0.1": "#1f77b4", "0.5": "#2ca02c", "0.9": "#9467bd"}
    for label, r in runs:
        dash = "" if label == runs[0][0] else ' stroke-dasharray="6,4"'
        series.append((f"x *= s ({label})", "#555555", dash, [r.get((n, "floor x*=s", None)) for n in sizes]))
        for p in PS:
            series.append((f"bitdrop p={p} ({label})", colours[p], dash, [r.get((n, "forward keyed", p)) for n in sizes]))
        series.append((f"handwritten p=0.5 ({label})", "#d62728", dash, [r.get((n, "handwritten", "0.5")) for n in sizes]))
    values = [v for _, _, _, vs in series for v in vs if v]
    lo, hi = math.log10(min(values) / 1.5), math.log10(max(values) * 1.5)
    x_of = lambda i: left + (width - left - right) * (i / max(1, len(sizes) - 1))
    y_of = lambda v: top + (height - top - bottom) * (1 - (math.log10(v) - lo) / (hi - lo))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="14">Forward in place, throughput against size ({cpu_model()})</text>',
    ]
    for decade in range(math.floor(lo), math.ceil(hi) + 1):
        for m in (1, 2, 5):
            v = m * 10**decade
            if lo <= math.log10(v) <= hi:
                y = y_of(v)
                out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
                out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v / 1e9:g}</text>')
    out.append(f'<text x="16" y="{(top + height - bottom) / 2}" transform="rotate(-90 16 {(top + height - bottom) / 2})" text-anchor="middle">G elements / s</text>')
    for i, n in enumerate(sizes):
        out.append(f'<text x="{x_of(i):.1f}" y="{height - bottom + 18}" text-anchor="middle">{size_label(n)}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">elements (f32)</text>')
    for k, (name, colour, dash, vs) in enumerate(series):
        points = [(x_of(i), y_of(v)) for i, v in enumerate(vs) if v]
        if len(points) > 1:
            path_d = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(f'<polyline points="{path_d}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for x, y in points:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
        ly = top + 14 * k + 10
        lx = width - right + 15
        out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 30}" y="{ly}">{name}</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


def main(args):
    if args:
        pairs = [(args[i], args[i + 1] if i + 1 < len(args) else args[i]) for i in range(0, len(args), 2)]
    else:
        pairs = [
            (ROOT / "benches/target/criterion", "default"),
            (ROOT / "benches/target/native/criterion", "native"),
        ]
    runs = [(label, load(d)) for d, label in pairs if Path(d).is_dir()]
    runs = [(label, r) for label, r in runs if r]
    if not runs:
        sys.exit("no criterion results found: run `cargo bench` first")
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"CPU: {cpu_model()} ({cpu_flags()}), {os.cpu_count()} cores; {rustc}")
    print()
    for label, r in runs:
        print(table(label, r))
        print(all_operations(label, r))
    chart(runs, ROOT / "benches/throughput.svg")
    print("chart written to benches/throughput.svg", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
