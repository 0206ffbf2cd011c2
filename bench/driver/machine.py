"""What machine and which versions a run was on."""

from __future__ import annotations

import os
import platform
import subprocess

from . import paths
from .build import Artifacts


def _out(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, cwd=paths.ROOT, timeout=30)
        return (result.stdout or result.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _commit() -> str:
    """HEAD, and which measured sources the working tree changes (other
    work in progress is built and measured too)."""
    commit = _out(["git", "rev-parse", "--short", "HEAD"])
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "router", "processor", "cache", "core", "glue", "runner",
             "spin.toml", "runtime-config.toml", "Cargo.lock"],
            capture_output=True, text=True, cwd=paths.ROOT, timeout=30,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return commit
    changed = [line[3:] for line in out.splitlines() if line.strip()]
    if changed:
        shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
        commit += f" (plus uncommitted changes to {shown})"
    return commit


def describe(art: Artifacts) -> dict:
    machine = {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory": _memory(),
        "kernel": f"{platform.system()} {platform.release()}",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    versions = {
        "commit": _commit(),
        "rustc": _out(["rustc", "--version"]),
        "wrk": _out([str(art.wrk), "-v"]) if art.wrk else "absent",
        "node": _out([str(art.node), "--version"]) if art.node else "absent",
        "edge-runner": _out([str(art.runner), "--version"]) if art.runner else "absent",
        "wasmtime": _out([str(art.wasmtime), "--version"]) if art.wasmtime else "absent",
        "spin": f"{art.spin_version} ({art.spin_source}: {art.spin})" if art.spin else "absent",
        "python": platform.python_version(),
    }
    return {"machine": machine, "versions": versions}
