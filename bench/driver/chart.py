"""Draws bench/results/latest.svg from latest.json with matplotlib.

Run by bench/run with the Python of bench/.venv (where it installs
matplotlib when the system Python lacks it):
    python chart.py latest.json latest.svg
Standalone on purpose: it imports nothing from the driver.
"""

import json
import sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {
    "runner": "#1f77b4", "native": "#2ca02c", "node": "#ff7f0e", "spin": "#9467bd",
    "wasmtime": "#8c564b", "runner-proc": "#17becf", "runner-proc-vars": "#7f7f7f",
}


def bars(ax, data, group, scenarios, metric, title, ylabel, log):
    systems = [s for s in data["systems"] if s["group"] == group]
    runs = {(r["system"], r["scenario"], r["concurrency"]): r for r in data["runs"]}
    cases = [(key, label, c) for key, label in scenarios for c in (16, 1)]
    width = 0.8 / max(len(systems), 1)
    for i, system in enumerate(systems):
        xs, ys = [], []
        for j, (key, _, c) in enumerate(cases):
            r = runs.get((system["key"], key, c))
            if r is not None and r[metric] > 0:
                xs.append(j + (i - (len(systems) - 1) / 2) * width)
                ys.append(r[metric])
        ax.bar(xs, ys, width, label=system["label"], color=COLOURS.get(system["key"]))
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([f"{label}\nc={c}" for _, label, c in cases], fontsize=7)
    if log:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3, which="both")
    # Beside the plot, so it never hides a bar.
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))


def main(src, dst):
    with open(src) as f:
        data = json.load(f)
    app = [("hit", "hit"), ("miss", "miss"), ("skipped", "skipped"), ("batch100", "batch 100"),
           ("health", "health")]
    proc = [("process", "one item"), ("p-skipped", "skipped"), ("p-batch100", "batch 100")]
    fig, axes = plt.subplots(3, 1, figsize=(13, 13))
    bars(axes[0], data, "app", app, "rps", "The app's API: requests/s (log scale)", "req/s", True)
    bars(axes[1], data, "app", app, "p99_ms", "The app's API: p99 latency (log scale)", "ms", True)
    bars(axes[2], data, "processor", proc, "rps",
         "The processor component alone: requests/s per host", "req/s", False)
    fig.suptitle(f"edge-processor benchmark ({data['mode']} run, {data['date']}, "
                 f"{data['machine']['nproc']} cores: {data['machine']['cpu']})", fontsize=11)
    fig.tight_layout()
    fig.savefig(dst, format="svg")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
