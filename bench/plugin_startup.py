"""What installing hydrogen-harness costs every pytest session of its user: the
plugin loads through its pytest11 entry point even when no test uses a fixture.

`pytest --co -q` of a file holding one trivial test, in a fresh interpreter each run,
with the plugin and with `-p no:hydrogen_harness`; the runs alternate (A B A B ...) so
a change in the machine's load falls on both sides alike.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.measure import Figure

__all__ = ["TARGET_SECONDS", "bench_plugin_startup"]

TARGET_SECONDS = 0.3
USER_TEST = "def test_trivial() -> None:\n    assert 1 + 1 == 2\n"


def _collect_seconds(folder: Path, plugin: bool) -> float:
    command = [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "test_trivial.py"]
    if not plugin:
        command[4:4] = ["-p", "no:hydrogen_harness"]
    # The user's environment: their own folder as rootdir, no PYTHONPATH of ours.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    began = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - began
    if done.returncode != 0 or "1 test collected" not in done.stdout:
        raise RuntimeError(f"pytest --co failed ({done.returncode}): {done.stdout[-500:]}{done.stderr[-500:]}")
    return seconds


def bench_plugin_startup(quick: bool = False, runs: int = 7) -> dict[str, Any]:
    """Medians of `runs` interleaved collections with and without the plugin, and their difference."""
    runs = 3 if quick else runs
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "test_trivial.py").write_text(USER_TEST)
        _collect_seconds(folder, plugin=True)  # untimed: byte-compiles and warms the file cache
        _collect_seconds(folder, plugin=False)
        with_plugin: list[float] = []
        without_plugin: list[float] = []
        for _ in range(runs):
            with_plugin.append(_collect_seconds(folder, plugin=True))
            without_plugin.append(_collect_seconds(folder, plugin=False))
    loaded = Figure.median_of("with_plugin", "s", with_plugin)
    blocked = Figure.median_of("without_plugin", "s", without_plugin)
    cost = loaded.value - blocked.value
    return {
        "with_plugin": loaded.as_json(),
        "without_plugin": blocked.as_json(),
        "plugin_cost_s": round(cost, 4),
        "target": {
            "what": f"pytest --co with the plugin < {TARGET_SECONDS} s over -p no:hydrogen_harness",
            "seconds": round(cost, 4),
            "holds": cost < TARGET_SECONDS,
        },
    }
