"""Builds (or finds) everything a run needs, and records what it had to skip.

Every build is incremental: a second run only asks cargo whether anything
changed. Cargo's own progress goes to stderr.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .progress import say


@dataclass
class Artifacts:
    wrk: Path | None = None
    node: Path | None = None
    runner: Path | None = None
    # The app's components by name (router, processor, cache), when built.
    components: dict[str, Path] = field(default_factory=dict)
    native: Path | None = None
    node_core: Path | None = None
    plain_processor: Path | None = None
    wasmtime: Path | None = None
    spin: Path | None = None
    # `spin --version`'s line, e.g. "spin 4.0.2 (bfc7543b 2026-06-23)".
    spin_version: str | None = None
    # Where the Spin binary came from: "SPIN_BIN", "../shared/spin/spin" or "PATH".
    spin_source: str | None = None
    # (what, why) for everything left out.
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, what: str, why: str) -> None:
        say(f"SKIP {what}: {why}")
        self.skipped.append((what, why))


def _run(argv: list[str], cwd: Path = paths.ROOT, env: dict | None = None) -> bool:
    say("$ " + " ".join(str(a) for a in argv))
    merged = {**os.environ, **(env or {})}
    # Cargo's output is progress: all of it to stderr.
    result = subprocess.run(argv, cwd=cwd, env=merged, stdout=sys.stderr, stderr=sys.stderr)
    return result.returncode == 0


def _cargo_bench_crate(crate: str, extra: list[str], target_dir: Path = paths.TARGET, env=None) -> bool:
    manifest = paths.BENCH / crate / "Cargo.toml"
    return _run(
        ["cargo", "build", "--release", "--manifest-path", str(manifest), "--target-dir", str(target_dir), *extra],
        env=env,
    )


def _installed_targets() -> set[str]:
    try:
        out = subprocess.run(
            ["rustup", "target", "list", "--installed"], cwd=paths.ROOT, capture_output=True, text=True
        ).stdout
    except FileNotFoundError:
        return set()
    return set(out.split())


def _find_wrk(art: Artifacts) -> None:
    wrk = shutil.which("wrk")
    if wrk is None and shutil.which("apt-get") and os.geteuid() == 0:
        say("wrk is not installed: installing Debian's package")
        _run(["apt-get", "update", "-qq"])
        _run(["apt-get", "install", "-y", "-qq", "wrk"])
        wrk = shutil.which("wrk")
    art.wrk = Path(wrk) if wrk else None


def _build_runner(art: Artifacts) -> None:
    if _run(["cargo", "build", "--release", "-p", "edge-runner"]) and paths.RUNNER.exists():
        art.runner = paths.RUNNER
    else:
        art.skip("edge-runner columns", "`cargo build --release -p edge-runner` failed (see above)")


def _build_components(art: Artifacts) -> None:
    names = ["router", "processor", "cache"]
    base = ["cargo", "build", "--target", "wasm32-wasip2", "--profile", "wasm"]
    if not _run(base + [a for n in names for a in ("-p", n)]):
        # Build one by one, so a component still being written does not
        # cost the columns that need only the others.
        for name in names:
            _run(base + ["-p", name])
    for name in names:
        wasm = paths.COMPONENTS / f"{name}.wasm"
        if wasm.exists():
            art.components[name] = wasm


def _build_node_core(art: Artifacts) -> None:
    if "wasm32-unknown-unknown" not in _installed_targets():
        say("wasm32-unknown-unknown is not installed: trying `rustup target add`")
        _run(["rustup", "target", "add", "wasm32-unknown-unknown"])
    if "wasm32-unknown-unknown" in _installed_targets():
        if _cargo_bench_crate("node", ["--target", "wasm32-unknown-unknown"]):
            art.node_core = paths.TARGET / "wasm32-unknown-unknown" / "release" / "bench_node_core.wasm"
        return
    # Fallback: a wasm32-wasip2 build left as a core module (no component
    # wrapping); its few WASI imports are stubbed by the Node host. A target
    # dir of its own, so these flags do not rebuild the other wasip2 crates.
    target_dir = paths.TARGET / "node-wasip2"
    env = {"CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS": "-Clink-arg=--skip-wit-component"}
    if _cargo_bench_crate("node", ["--target", "wasm32-wasip2"], target_dir=target_dir, env=env):
        art.node_core = target_dir / "wasm32-wasip2" / "release" / "bench_node_core.wasm"


def _wasmtime_version(binary: str | Path) -> str | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
    except OSError:
        return None
    parts = out.split()
    return parts[1] if len(parts) > 1 else None


def _find_wasmtime(art: Artifacts, quick: bool) -> None:
    candidates = [paths.TOOLS / "bin" / "wasmtime", shutil.which("wasmtime")]
    for candidate in candidates:
        if candidate and _wasmtime_version(candidate) == paths.WASMTIME_VERSION:
            art.wasmtime = Path(candidate)
            return
    install = [
        "cargo", "install", "--locked", "wasmtime-cli", "--version", paths.WASMTIME_VERSION,
        "--root", str(paths.TOOLS), "--target-dir", str(paths.TARGET / "wasmtime-cli"),
    ]
    if quick:
        art.skip(
            "wasmtime serve column",
            f"wasmtime-cli {paths.WASMTIME_VERSION} is not installed and --quick does not build it "
            f"(a ~20-minute build on 2 cores); a full `bench/run` installs it into bench/.tools, or run: "
            + " ".join(install),
        )
        return
    say(f"installing wasmtime-cli {paths.WASMTIME_VERSION} into bench/.tools (a long build)")
    if _run(install):
        art.wasmtime = paths.TOOLS / "bin" / "wasmtime"
    else:
        art.skip("wasmtime serve column", "`cargo install wasmtime-cli` failed (see above)")


def _version_line(binary: Path) -> str | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0] if out.returncode == 0 and lines else None


def _find_spin(art: Artifacts) -> None:
    """Real Spin: $SPIN_BIN, else ../shared/spin/spin beside the repo, else
    `spin` on PATH (the order the integration tests use too)."""
    env = os.environ.get("SPIN_BIN")
    on_path = shutil.which("spin")
    if env:
        candidates = [(Path(env), "SPIN_BIN")]
    else:
        candidates = [(paths.SHARED_SPIN, "../shared/spin/spin")]
        if on_path:
            candidates.append((Path(on_path), "PATH"))
    for binary, source in candidates:
        if not binary.exists():
            continue
        version = _version_line(binary)
        if version is None:
            say(f"{binary} ({source}) does not answer `--version`: not used")
            continue
        art.spin, art.spin_version, art.spin_source = binary.resolve(), version, source
        say(f"Spin: {binary} ({source}): {version}")
        return
    if env:
        art.skip("Spin column", f"SPIN_BIN={env} is not a working spin binary")
    else:
        art.skip("Spin column", f"no Spin binary: SPIN_BIN is unset, {paths.SHARED_SPIN} is absent "
                 "and `spin` is not on PATH")


# Which systems need which build (see systems.py for the keys).
NEEDS = {
    "runner": {"runner", "runner-proc", "runner-proc-vars"},
    "components": {"runner", "runner-proc-vars", "spin"},
    "native": {"native"},
    "node": {"node"},
    "plain": {"wasmtime", "runner-proc"},
    "wasmtime": {"wasmtime"},
    "spin": {"spin"},
}


def build_all(quick: bool, only: set[str] | None = None) -> Artifacts:
    """Builds what the systems in `only` (default: all) need."""
    def needed(what: str) -> bool:
        return only is None or bool(NEEDS[what] & only)

    art = Artifacts()
    _find_wrk(art)
    if art.wrk is None:
        art.skip("every load test", "wrk is not installed and could not be installed (apt-get install wrk)")
        return art

    if needed("node"):
        node = shutil.which("node")
        art.node = Path(node) if node else None
        if art.node is None:
            art.skip("Node column", "`node` is not on PATH")

    if needed("runner"):
        say("building the runner (release)")
        _build_runner(art)
    if needed("components"):
        say("building the components (wasm32-wasip2, profile wasm)")
        _build_components(art)
        if not paths.MANIFEST.exists():
            art.skip("runner (app) column", f"{paths.MANIFEST.relative_to(paths.ROOT)} does not exist yet")
        else:
            missing = [n for n in ("router", "processor", "cache") if n not in art.components]
            if missing:
                art.skip("runner (app) column", f"component(s) {', '.join(missing)} did not build")

    if needed("native"):
        say("building the native baseline (bench/native)")
        if _cargo_bench_crate("native", []):
            art.native = paths.TARGET / "release" / "bench-native"
        else:
            art.skip("native column", "bench/native did not build (see above)")

    if needed("node") and art.node is not None:
        say("building the Node baseline's core module (bench/node)")
        _build_node_core(art)
        if art.node_core is None:
            art.skip("Node column", "bench/node's core module did not build (see above)")

    if needed("plain"):
        say("building the processor without Spin variables (bench/plain-processor)")
        if _cargo_bench_crate("plain-processor", ["--target", "wasm32-wasip2"]):
            art.plain_processor = paths.TARGET / "wasm32-wasip2" / "release" / "bench_plain_processor.wasm"
        else:
            art.skip("processor-alone columns", "bench/plain-processor did not build (see above)")

    if needed("wasmtime"):
        _find_wasmtime(art, quick)
    if needed("spin"):
        _find_spin(art)
    return art
