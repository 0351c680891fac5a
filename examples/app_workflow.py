"""A Hydrogen Network application, end to end, against the local sandbox.

This file is the integration guide in code. The application itself is the
`cnx_app` package next to it (examples/cnx_app/cnx_app/: web3, eth-account and
httpx only, nothing from hydrogen-harness); this script reads the sandbox's
sandbox.json and runs one task with it. It would run the same way against the
real network given its RPC URL, Relay URL, contract addresses and a funded key.

    hydrogen-harness sandbox &                      # writes .sandbox/sandbox.json
    python examples/app_workflow.py --out out/app   # one task, images in out/app

The workflow (PROTOCOL.md 1): approve the Task contract to take 3 fees of CNX;
createTask(keccak(args JSON), 0); find the task id in the TaskCreated log; upload
the args JSON to the Relay, signed; wait for TaskSuccess or TaskAborted; download
the images from the Relay, signed. `--cancel-after-timeout` shows the other
ending: if no outcome comes within `--wait` seconds, move the sandbox's clock
past the task's deadline (evm_increaseTime, evm_mine) and cancelTask for a refund.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

# The application package lives in examples/cnx_app/ (or `pip install -e examples/cnx_app`).
sys.path.insert(0, str(Path(__file__).resolve().parent / "cnx_app"))

from cnx_app import CnxApp, TaskFailed, args_json  # noqa: E402
from cnx_app.relay_signing import go_json, sign_request  # noqa: E402

__all__ = ["App", "TaskFailed", "go_json", "main", "parse_options", "run", "sign_request"]


class App(CnxApp):
    """The application, configured from the sandbox's sandbox.json (its app wallet)."""

    def __init__(self, sandbox: dict[str, Any], log: bool = True) -> None:
        contracts = sandbox["contracts"]
        super().__init__(
            sandbox["rpc_url"],
            sandbox["relay_url"],
            contracts["token"],
            contracts["task"],
            sandbox["app"]["private_key"],
            poll=0.25,
            log=(lambda message: print(message, file=sys.stderr, flush=True)) if log else None,
        )

    def cancel_after_deadline(self, task_id: int) -> None:
        """Move the sandbox's clock past the task's deadline, then cancel it (dev methods:
        on the real network, one waits for the deadline instead)."""
        skip = max(self.deadline(task_id) - self.chain_time() + 1, 1)
        self.w3.provider.make_request("evm_increaseTime", [skip])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        self.say(f"task {task_id}: clock moved {skip} s past its deadline; cancelling")
        self.cancel(task_id)


def run(options: argparse.Namespace) -> dict[str, Any]:
    sandbox = json.loads(Path(options.sandbox).read_text())
    app = App(sandbox, log=not options.quiet)
    app.timeout = options.timeout
    started = time.monotonic()
    args = {
        "base_model": "runwayml/stable-diffusion-v1-5",
        "prompt": options.prompt,
        "negative_prompt": "",
        "task_config": {"image_width": options.size, "image_height": options.size, "num_images": options.images,
                        "seed": options.seed, "steps": 25, "cfg": 5, "safety_checker": False},
    }  # fmt: skip
    task_args = args_json(args)  # the exact string hashed and uploaded
    cnx_before = app.cnx()
    task_id, block = app.create_task(task_args)
    app.say(f"task {task_id}: created in block {block}")
    app.upload_args(task_id, task_args, timeout=options.timeout)
    app.say(f"task {task_id}: args uploaded to the Relay")

    wait = options.wait if options.cancel_after_timeout else options.timeout
    deadline = time.monotonic() + wait
    outcome = app.outcome(task_id, block)
    while outcome is None and time.monotonic() < deadline:
        time.sleep(0.25)
        outcome = app.outcome(task_id, block)
    if outcome is None and options.cancel_after_timeout:
        app.cancel_after_deadline(task_id)
        outcome = app.outcome(task_id, block)
    if outcome is None:
        raise TaskFailed(f"task {task_id}: no outcome within {wait} s")

    report: dict[str, Any] = {"task_id": task_id, "create_block": block, "cnx_before": cnx_before}
    if outcome["event"] == "TaskAborted":
        ending = "cancelled" if outcome["reason"] == "Task Cancelled" else "aborted"
        report.update(outcome=ending, reason=outcome["reason"])
        app.say(f"task {task_id}: {ending}: {outcome['reason']}")
    else:
        result = bytes(outcome["result"])
        out = Path(options.out)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for index in range(len(result) // 8):  # one 8-byte perceptual hash per image
            path = out / f"task-{task_id}-{index}.png"
            path.write_bytes(app.download(task_id, index, timeout=options.timeout))
            paths.append(str(path))
        report.update(outcome="success", result="0x" + result.hex(), images=paths)
        app.say(f"task {task_id}: {len(paths)} images written to {out}")
    report.update(cnx_after=app.cnx(), seconds=round(time.monotonic() - started, 2))
    return report


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", default=".sandbox/sandbox.json", help="the sandbox's sandbox.json")
    parser.add_argument("--out", default="out/app", help="folder for the downloaded images")
    parser.add_argument("--prompt", default="a lighthouse at dusk, oil painting")
    parser.add_argument("--images", type=int, default=2, help="images to generate (1-10)")
    parser.add_argument("--size", type=int, default=512, help="image width and height")
    parser.add_argument("--seed", type=int, default=42, help="the diffusion seed")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for each step")
    parser.add_argument("--cancel-after-timeout", action="store_true",
                        help="if no outcome comes within --wait s, jump past the deadline and cancel the task")  # fmt: skip
    parser.add_argument("--wait", type=float, default=3, help="seconds to wait before cancelling (default 3)")
    parser.add_argument("--quiet", action="store_true", help="print only the JSON report")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one task; print a JSON report. Exit 0 on success, 3 if aborted or cancelled, 1 on failure."""
    try:
        report = run(parse_options(argv))
    except TaskFailed as exc:
        print(json.dumps({"outcome": "failed", "error": str(exc)}))
        return 1
    print(json.dumps(report))
    return 0 if report["outcome"] == "success" else 3


if __name__ == "__main__":
    sys.exit(main())
