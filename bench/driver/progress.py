"""Progress on stderr, so stdout carries only the table."""

import sys
import time

_START = time.monotonic()


def say(message: str) -> None:
    elapsed = time.monotonic() - _START
    print(f"[bench {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)
