"""Scenarios and the load generator: wrk, driven by bench/wrk/bench.lua,
whose done() hands back wrk's own counts and latency percentiles."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import paths

THRESHOLD = 100
MULTIPLIER = 2


def _batch(n: int) -> bytes:
    # Half above the threshold (processed), half at or below it (skipped).
    items = [
        {"id": f"batch-{i}", "value": 150 if i % 2 == 0 else 50, "timestamp": 1700000000}
        for i in range(n)
    ]
    return json.dumps(items, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    group: str  # which systems: "app" or "processor"
    method: str
    path: str
    body: bytes | None = None
    # A new id on every request (a cache miss), with this value.
    unique_value: int | None = None
    # What a correct answer contains (checked once before the load).
    expect: bytes = b""


def _item(value: int) -> bytes:
    return json.dumps({"id": "bench-fixed", "value": value, "timestamp": 1700000000},
                      separators=(",", ":")).encode()


SCENARIOS = [
    Scenario("hit", "cache hit (same item)", "app", "POST", "/api/process", _item(150),
             expect=b'"result":300'),
    Scenario("miss", "cache miss (unique ids)", "app", "POST", "/api/process", unique_value=150,
             expect=b'"result":300'),
    Scenario("skipped", "skipped value (unique ids)", "app", "POST", "/api/process", unique_value=50,
             expect=b'"status":"skipped"'),
    Scenario("batch100", "batch of 100", "app", "POST", "/api/process/batch", _batch(100),
             expect=b'"result":300'),
    Scenario("health", "health", "app", "GET", "/api/health", expect=b'"status":"ok"'),
    # The processor alone has no cache: every request runs the rule.
    Scenario("process", "one item", "processor", "POST", "/process", _item(150),
             expect=b'"result":300'),
    Scenario("p-skipped", "skipped value", "processor", "POST", "/process", _item(50),
             expect=b'"status":"skipped"'),
    Scenario("p-batch100", "batch of 100", "processor", "POST", "/process/batch", _batch(100),
             expect=b'"result":300'),
]

CONCURRENCY = [1, 16]


def check(port: int, scenario: Scenario) -> tuple[bool, str]:
    """One request as the scenario sends it: is the answer right? (For the
    hit scenario this also primes the cache.)"""
    body = scenario.body
    if scenario.unique_value is not None:
        body = json.dumps({"id": "bench-check", "value": scenario.unique_value,
                           "timestamp": 1700000000}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request(scenario.method, scenario.path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
    except OSError as e:
        return False, f"request failed: {e}"
    finally:
        conn.close()
    if response.status != 200:
        return False, f"status {response.status}: {payload[:200]!r}"
    if scenario.expect not in payload:
        return False, f"answer lacks {scenario.expect!r}: {payload[:200]!r}"
    return True, "ok"


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_detail: dict


def run_wrk(wrk: Path, port: int, scenario: Scenario, concurrency: int, seconds: int,
            workdir: Path, unique_prefix: str) -> WrkResult:
    threads = min(concurrency, 2)
    env = {
        **os.environ,
        "BENCH_METHOD": scenario.method,
        "BENCH_PATH": scenario.path,
        "BENCH_BODY_FILE": "",
        "BENCH_UNIQUE_PREFIX": "",
    }
    if scenario.body is not None:
        body_file = workdir / f"body-{scenario.key}.json"
        body_file.write_bytes(scenario.body)
        env["BENCH_BODY_FILE"] = str(body_file)
    if scenario.unique_value is not None:
        env["BENCH_UNIQUE_PREFIX"] = unique_prefix
        env["BENCH_VALUE"] = str(scenario.unique_value)
    argv = [
        str(wrk), f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "5s",
        "--latency", "-s", str(paths.WRK_SCRIPT), f"http://127.0.0.1:{port}{scenario.path}",
    ]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    with open(workdir / "wrk.log", "a") as log:
        log.write(f"$ {' '.join(argv)}\n{out.stdout}{out.stderr}\n")
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {out.stdout[-500:]}{out.stderr[-500:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    duration_s = data["duration_us"] / 1e6
    detail = {k: data[k] for k in ("status", "connect", "read", "write", "timeout")}
    return WrkResult(
        requests=data["requests"],
        duration_s=duration_s,
        rps=data["requests"] / duration_s if duration_s > 0 else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=sum(detail.values()),
        error_detail=detail,
    )
