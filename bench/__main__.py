"""`make bench`: every figure as one JSON object, then a readable table.

Each figure is a median of several runs; ratio targets are computed against a
floor measured in the same run. `--quick` shrinks every size for a smoke run.
Each section's figures are written to the JSON file as soon as it ends, and a
section that fails is reported as failed while the others still run and print.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.gas import bench_gas
from bench.scale import seconds_per_task_aged, seconds_per_task_by_nodes
from bench.workflow import bench_backends, bench_workflow, time_shares

SECTIONS = ("workflow", "gas", "scale", "properties", "sandbox", "rpc", "fixture", "nodes", "dashboard", "plugin_startup", "isolation", "suite")


def _workflow(quick: bool) -> dict[str, Any]:
    figures = bench_workflow(tasks=3 if quick else 10, repeats=3)
    ratio = figures["workflow_tx_per_s"].value / figures["bare_tx_per_s"].value
    # 16 pairs of 1-s batches: on a machine whose speed moves by a third within seconds,
    # single pairs range from 7x to 13x, and the median of 8 moved by a whole unit run to run.
    backends = bench_backends(pairs=3 if quick else 16, tester_tasks=2 if quick else 3, revm_tasks=10 if quick else 30)
    speedup = backends["revm_over_eth_tester"]["median"]
    return {
        **{key: figure.as_json() for key, figure in figures.items()},
        "target": {"what": "workflow tx/s >= 0.8 x bare web3 tx/s", "ratio": round(ratio, 3), "holds": ratio >= 0.8},
        "backends": {
            **backends,
            "time_shares_revm": time_shares("revm", tasks=10 if quick else 30),
            "time_shares_eth_tester": time_shares("eth-tester", tasks=3 if quick else 8),
            "target": {"what": "workflow tasks/s on revm >= 10 x on eth-tester (median of pairs)", "ratio": speedup, "holds": speedup >= 10},
        },
    }


def _gas(quick: bool) -> dict[str, Any]:
    counts = (10, 100) if quick else (10, 100, 1000)
    steps, by_nodes = bench_gas(counts)
    ratio = by_nodes[max(counts)] / by_nodes[10]
    return {
        "steps": vars(steps),
        "create_task_by_nodes": {str(k): v for k, v in by_nodes.items()},
        "target": {"what": f"createTask gas at {max(counts)} nodes <= 1.05 x at 10", "ratio": round(ratio, 4), "holds": ratio <= 1.05},
    }


def _progress(label: str, every_s: float = 10.0) -> Callable[[int], None]:
    """Prints `label: task N` to stderr at most every `every_s` seconds."""
    last = [time.perf_counter()]

    def report(number: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= every_s:
            print(f"  {label}: task {number}", file=sys.stderr, flush=True)
            last[0] = now

    return report


def _scale(quick: bool) -> dict[str, Any]:
    """Seconds per task at task 10 and after task N on both in-memory chains, N as far
    as 1000 or a time budget per backend goes (eth-tester does not reach 1000 in it)."""
    total, budget = (100, 15.0) if quick else (1000, 60.0)
    history = {
        backend: {
            "budget_s": budget,
            **seconds_per_task_aged(backend, total=total, budget_s=budget, pairs=2 if quick else 3, progress=_progress(f"scale {backend}")),
        }
        for backend in ("revm", "eth-tester")
    }
    nodes = seconds_per_task_by_nodes((5, 50) if quick else (5, 50, 200))
    worst = max(float(figures["ratio_median"]) for figures in history.values())
    return {
        "seconds_per_task_by_history": history,
        "seconds_per_task_by_nodes": {str(k): round(v, 4) for k, v in nodes.items()},
        "target": {
            "what": "seconds per task after task N <= 1.2 x at task 10, both backends (median of interleaved pairs; N per backend above)",
            "ratio": round(worst, 3),
            "holds": worst <= 1.2,
        },
    }


def _properties(quick: bool) -> dict[str, Any]:
    try:
        from bench.properties import bench_properties
    except ImportError as exc:
        return {"skipped": f"property benchmark unavailable: {exc}"}
    return bench_properties(quick)


def _sandbox(quick: bool) -> dict[str, Any]:
    try:
        from bench.sandbox import bench_sandbox
    except ImportError as exc:
        return {"skipped": f"sandbox benchmark unavailable: {exc}"}
    return bench_sandbox(quick)


def _rpc(quick: bool) -> dict[str, Any]:
    """JSON-RPC over WebSocket against HTTP, and the head's lead over the wall clock under load."""
    from bench.rpc_ws import bench_rpc_ws

    figures: dict[str, Any] = {"websocket_vs_http": bench_rpc_ws(quick)}
    try:
        from bench.rpc_clients import bench_head_lag
    except ImportError as exc:
        figures["head_lag"] = {"skipped": f"head-lag benchmark unavailable: {exc}"}
    else:
        figures["head_lag"] = bench_head_lag(quick)
    return figures


def _fixture(quick: bool) -> dict[str, Any]:
    try:
        from bench.fixture import bench_fixture
    except ImportError as exc:
        return {"skipped": f"fixture benchmark unavailable: {exc}"}
    return bench_fixture(quick)


def _nodes(quick: bool) -> dict[str, Any]:
    from bench.nodes import bench_upload_to_success

    return bench_upload_to_success(quick)


def _dashboard(quick: bool) -> dict[str, Any]:
    from bench.dashboard import bench_dashboard

    return bench_dashboard(quick)


def _isolation(quick: bool) -> dict[str, Any]:
    from bench.isolation import bench_isolation

    return bench_isolation(quick)


def _plugin_startup(quick: bool) -> dict[str, Any]:
    """What the installed plugin adds to every pytest session of its user."""
    from bench.plugin_startup import bench_plugin_startup

    return bench_plugin_startup(quick)


def _suite(quick: bool) -> dict[str, Any]:
    """`make test`'s wall time (last: it loads both cores for minutes)."""
    from bench.suite import bench_suite

    return bench_suite(quick)


RUNNERS = {
    "workflow": _workflow,
    "gas": _gas,
    "scale": _scale,
    "properties": _properties,
    "sandbox": _sandbox,
    "rpc": _rpc,
    "fixture": _fixture,
    "nodes": _nodes,
    "dashboard": _dashboard,
    "plugin_startup": _plugin_startup,
    "isolation": _isolation,
    "suite": _suite,
}


def _table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="hydrogen-harness benchmarks")
    table.add_column("section")
    table.add_column("figure")
    table.add_column("value", justify="right")

    def rows(section: str, data: Any, prefix: str = "") -> None:
        for key, value in data.items():
            if key == "target":
                if prefix:  # a nested figure's target (the top-level one is added below)
                    verdict = "holds" if value["holds"] else "MISSED"
                    measured = next((v for k, v in value.items() if k not in ("what", "holds")), "")
                    table.add_row(section, f"{prefix}target: {value['what']}", f"{measured} ({verdict})")
                continue
            name = f"{prefix}{key}"
            if isinstance(value, dict) and "value" in value:
                table.add_row(section, name, f"{value['value']:,.3f} {value['unit']}")
            elif isinstance(value, dict):
                rows(section, value, name + " ")
            else:
                table.add_row(section, name, f"{value:,}" if isinstance(value, (int, float)) else str(value))

    for section, data in results.items():
        rows(section, data)
        target = data.get("target") if isinstance(data, dict) else None
        if target:
            verdict = "holds" if target["holds"] else "MISSED"
            measured = next((v for k, v in target.items() if k not in ("what", "holds")), "")
            table.add_row(section, f"target: {target['what']}", f"{measured} ({verdict})")
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every benchmark")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections")
    parser.add_argument("--out", type=Path, default=Path("out/bench.json"), help="where to write the JSON too")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for section in args.only or SECTIONS:
        print(f"running {section} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            results[section] = RUNNERS[section](args.quick)
        except Exception as exc:  # one broken section must not lose the others' figures
            traceback.print_exc()
            results[section] = {"failed": f"{type(exc).__name__}: {exc}"}
        print(f"{section} done in {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    results["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(results, indent=2)
    print(text)
    args.out.write_text(text + "\n")
    _table({k: v for k, v in results.items() if isinstance(v, dict)})
    return 1 if any(isinstance(v, dict) and "failed" in v for v in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
