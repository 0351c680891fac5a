"""Seconds from the args upload to `TaskSuccess` in the sandbox, at 6 and 30 nodes.

The sandbox runs as the command runs it (`SandboxOptions` defaults: the chain
journaled to a state folder, a block a second while idle, nodes woken by each
block and each upload), in this process. The client is the example application
(examples/cnx_app: web3 + httpx): it approves and creates a task, then the clock
starts as its args upload is acknowledged and stops when its poll (every
`POLL` s) finds `TaskSuccess`. What is timed is the node loop's share of a
task: fetching the args, 3 commitments, 3 disclosures, as the nodes do it.

Two loads at each size: one app running its tasks one after another (each task
timed alone), and several apps at once, each with a wallet of its own (2 at 6
nodes, 6 at 30: about as many tasks in flight as the nodes can take while the
result nodes are still reporting), where the nodes' work on several tasks
overlaps. The
floor is the chain's: once the head is `max_lead` seconds ahead of the clock (after
a few tasks) each block waits for the next second, and a task needs two blocks
after its upload (the commitments', the disclosures'), so about 2 s.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.sandbox.core import Sandbox, SandboxOptions

__all__ = ["bench_upload_to_success", "upload_to_success_seconds"]

ROOT = Path(__file__).resolve().parent.parent
POLL = 0.02  # the client's poll for TaskSuccess: small beside what is measured
ARGS = {"base_model": "runwayml/stable-diffusion-v1-5", "prompt": "a red fox in snow",
        "task_config": {"num_images": 1, "image_width": 256, "image_height": 256}}  # fmt: skip


def _figure(samples: list[float]) -> dict[str, Any]:
    return {
        "value": round(statistics.median(samples), 3),
        "unit": "s",
        "min": round(min(samples), 3),
        "max": round(max(samples), 3),
        "stdev": round(statistics.stdev(samples), 3) if len(samples) > 1 else 0.0,
        "runs": [round(s, 3) for s in samples],
    }


def upload_to_success_seconds(nodes: int, tasks: int, apps: int = 1) -> dict[str, Any]:
    """Seconds from each task's acknowledged args upload to TaskSuccess, with `nodes` honest
    nodes and `apps` apps each running `tasks` tasks one after another, all at once."""
    sys.path.insert(0, str(ROOT / "examples" / "cnx_app"))
    try:
        from cnx_app import CnxApp, TaskFailed, args_json  # the user's application: no import of this project
    finally:
        sys.path.pop(0)
    samples: list[float] = []
    failures: list[BaseException] = []
    with tempfile.TemporaryDirectory() as folder:
        options = SandboxOptions(state=Path(folder), rpc_port=0, relay_port=0, behaviours=["honest"] * nodes)
        with Sandbox(options, log=lambda line: None) as sandbox:
            info = sandbox.info
            wallets = [sandbox.new_wallet(cnx=(tasks + 1) * 30 * CNX) for _ in range(apps)]

            def run(index: int) -> None:
                contracts = info["contracts"]
                with CnxApp(info["rpc_url"], info["relay_url"], contracts["token"], contracts["task"], wallets[index].key, poll=POLL) as app:
                    done = 0
                    while done < tasks:
                        task_args = args_json({**ARGS, "prompt": f"{ARGS['prompt']} {index} {done}"})
                        try:
                            task_id, block = app.create_task(task_args)
                        except TaskFailed:  # "Not enough nodes": every node busy for a moment
                            time.sleep(POLL)
                            continue
                        app.upload_args(task_id, task_args)
                        began = time.perf_counter()
                        found = app.wait(task_id, block)
                        samples.append(time.perf_counter() - began)
                        if found["event"] != "TaskSuccess":
                            raise RuntimeError(f"a benchmark task ended {found['event']}: {found.get('reason')}")
                        done += 1

            def guarded(index: int) -> None:
                try:
                    run(index)
                except BaseException as exc:  # reported by the caller's thread
                    failures.append(exc)

            threads = [threading.Thread(target=guarded, args=(i,)) for i in range(apps)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    if failures:
        raise failures[0]
    return _figure(samples)


def bench_upload_to_success(quick: bool = False) -> dict[str, Any]:
    """Upload-to-TaskSuccess seconds at 6 and 30 nodes, for `make bench` (`quick`: fewer tasks)."""
    tasks = 3 if quick else 8
    figures = {}
    for nodes, apps in ((6, 2), (30, 6)):
        figures[f"upload_to_success_{nodes}_nodes"] = upload_to_success_seconds(nodes, tasks)
        figures[f"upload_to_success_{nodes}_nodes_{apps}_apps"] = upload_to_success_seconds(nodes, tasks, apps=apps)
    worst = max(figure["value"] for figure in figures.values())
    ratio = figures["upload_to_success_30_nodes_6_apps"]["value"] / figures["upload_to_success_6_nodes"]["value"]
    return {
        **figures,
        "target": {
            "what": "median upload-to-TaskSuccess <= 3 s (a few seconds) in every run, and at 30 nodes under "
            "6 apps <= 1.5 x at 6 nodes with one app",
            "ratio": round(ratio, 3),
            "holds": worst <= 3.0 and ratio <= 1.5,
        },
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(bench_upload_to_success(quick="--quick" in sys.argv), indent=2))
