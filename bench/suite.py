"""The test suite's wall time: `make test`'s pytest command, timed from its start to its
summary, in a fresh process (set-up excluded: the virtualenv exists already)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["TARGET_SECONDS", "bench_suite"]

TARGET_SECONDS = 180.0
ROOT = Path(__file__).resolve().parent.parent
_PERCENT = re.compile(r"\[\s*(\d+)%\]")
_COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)")


def bench_suite(quick: bool = False, workers: int = 4, timeout_s: float = 1200.0) -> dict[str, Any]:
    """Runs the suite as `make test` does (or, with `quick`, only tests/unit) and
    reports its wall time and counts; a failing test fails the section."""
    command = [sys.executable, "-m", "pytest", "-n", str(workers), "--dist", "worksteal", "-p", "no:cacheprovider", "-q"]
    if quick:
        command.append("tests/unit")
    # As `make test`: bytecode caches on, whatever the caller's environment says.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(timeout_s, process.kill)
    watchdog.start()
    lines: list[str] = []
    last_report = began
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            now = time.perf_counter()
            done = _PERCENT.search(line)
            if done and now - last_report >= 10:
                print(f"  suite: {done.group(1)}% after {now - began:.0f} s", file=sys.stderr, flush=True)
                last_report = now
        returncode = process.wait()
    finally:
        watchdog.cancel()
    seconds = time.perf_counter() - began
    summary = next((line for line in reversed(lines) if line.strip()), "")
    if seconds >= timeout_s:
        raise TimeoutError(f"the suite was stopped after {timeout_s:.0f} s")
    if returncode != 0:
        raise RuntimeError(f"the suite failed (exit {returncode}): {summary}")
    figures: dict[str, Any] = {
        "what": "make test's pytest command" if not quick else "tests/unit only (--quick)",
        "workers": workers,
        "wall_s": round(seconds, 1),
        "counts": {kind: int(number) for number, kind in _COUNTS.findall(summary)},
    }
    if not quick:  # the target is the whole suite's
        figures["target"] = {"what": f"make test wall time <= {TARGET_SECONDS:.0f} s", "seconds": round(seconds, 1), "holds": seconds <= TARGET_SECONDS}
    return figures
