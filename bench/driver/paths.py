"""Where things are: the repository, bench/, and what the builds produce."""

from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
# Bench crates build here (gitignored), apart from the root workspace's target/.
TARGET = BENCH / "target"
TOOLS = BENCH / ".tools"
RESULTS = BENCH / "results"
WRK_SCRIPT = BENCH / "wrk" / "bench.lua"

# The root workspace's outputs (built by the commands the README gives).
RUNNER = ROOT / "target" / "release" / "edge-runner"
COMPONENTS = ROOT / "target" / "wasm32-wasip2" / "wasm"
MANIFEST = ROOT / "spin.toml"
RUNTIME_CONFIG = ROOT / "runtime-config.toml"

# Real Spin, for its column: $SPIN_BIN, else this binary beside the repo
# (../shared/spin/spin), else `spin` on PATH (build.py, _find_spin).
SHARED_SPIN = ROOT.parent / "shared" / "spin" / "spin"

# Versions the issue fixes: wasmtime-cli must match the runner's wasmtime.
WASMTIME_VERSION = "48.0.8"
