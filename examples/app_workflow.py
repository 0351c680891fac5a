"""A Hydrogen Network application, end to end, against the local sandbox.

This file is the integration guide in code. It uses only web3, eth-account and
httpx (nothing from hydrogen-harness), talks to the chain over JSON-RPC and to the
Relay over HTTP, and would run the same way against the real network given its
RPC URL, Relay URL, contract addresses and a funded key.

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

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError

ZERO_HASH = b"\x00" * 32
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class TaskFailed(Exception):
    pass


# ---------------------------------------------------------------- Relay signatures (PROTOCOL.md 4)

# Go's encoding/json escapes these; every other control character becomes \u00XX.
_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}  # fmt: skip


def go_json(params: dict[str, str | int]) -> str:
    """The params as Go's json.Marshal writes them: keys sorted, compact, HTML-safe escapes."""

    def text(s: str) -> str:
        return '"' + "".join(_GO_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in s) + '"'

    return "{" + ",".join(f"{text(k)}:{text(v) if isinstance(v, str) else int(v)}" for k, v in sorted(params.items())) + "}"


def sign_request(params: dict[str, str | int], account: LocalAccount) -> dict[str, Any]:
    """timestamp and signature for a Relay request: raw secp256k1 over keccak(JSON + timestamp)."""
    timestamp = int(time.time())
    digest = Web3.keccak(text=go_json(params) + str(timestamp))
    signed = Account.unsafe_sign_hash(digest, account.key)
    r, s, v = signed.r, signed.s, signed.v - 27  # the Relay wants v in {0, 1}
    if s > SECP256K1_N // 2:  # and low s
        s, v = SECP256K1_N - s, v ^ 1
    signature = "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex() + f"{v:02x}"
    return {"timestamp": timestamp, "signature": signature}


def relay_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    return str(data.get("message") or body.get("message"))


# ---------------------------------------------------------------- the application


class App:
    def __init__(self, sandbox: dict[str, Any], log: bool = True) -> None:
        self.w3 = Web3(Web3.HTTPProvider(sandbox["rpc_url"], request_kwargs={"timeout": 30}))
        self.relay = httpx.Client(base_url=sandbox["relay_url"], timeout=30)
        self.account: LocalAccount = Account.from_key(sandbox["app"]["private_key"])
        contracts, abi = sandbox["contracts"], sandbox["abi"]
        self.token = self.w3.eth.contract(address=contracts["token"], abi=abi["token"])
        self.task = self.w3.eth.contract(address=contracts["task"], abi=abi["task"])
        self.verbose = log

    def say(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr, flush=True)

    # -- chain ----------------------------------------------------------

    def send(self, call: Any, gas: int) -> Any:
        """Sign and send a contract call with an explicit gas limit; the receipt, or TaskFailed
        with the revert reason, read as H-net clients do: by replaying the call on the block before."""
        tx = call.build_transaction(
            {"from": self.account.address, "gas": gas,
             "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending")}
        )  # fmt: skip
        tx_hash = self.w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.1)
        if receipt["status"] != 1:
            replay = {k: tx[k] for k in ("from", "to", "data", "value", "gas")}
            try:
                self.w3.eth.call(replay, block_identifier=receipt["blockNumber"] - 1)
                reason = "unknown (the replay did not revert)"
            except ContractLogicError as exc:
                reason = str(exc.message)
            raise TaskFailed(f"{call.fn_name} reverted: {reason}")
        return receipt

    def cnx(self) -> int:
        return int(self.token.functions.balanceOf(self.account.address).call())

    def create_task(self, args_json: str) -> tuple[int, int]:
        """approve + createTask; returns (task id, block number)."""
        fee = self.task.functions.taskFeePerNode().call()
        self.send(self.token.functions.approve(self.task.address, 3 * fee), gas=100_000)
        task_hash = Web3.keccak(text=args_json)  # of the exact string uploaded later
        receipt = self.send(self.task.functions.createTask(task_hash, ZERO_HASH), gas=1_500_000)
        # Find the event by its topic: the log position changes with the allowance mode.
        created = self.task.events.TaskCreated()
        topic = self.w3.keccak(text="TaskCreated(uint256,address,address,bytes32,bytes32,uint256)")
        for log in receipt["logs"]:
            if log["address"] == self.task.address and log["topics"][0] == topic:
                return int(created.process_log(log)["args"]["taskId"]), int(receipt["blockNumber"])
        raise TaskFailed("createTask succeeded without a TaskCreated log")

    def outcome(self, task_id: int, from_block: int) -> dict[str, Any] | None:
        """TaskSuccess or TaskAborted of this task, if emitted yet (taskId is not indexed: decode)."""
        events = {self.w3.keccak(text=sig): name for sig, name in (
            ("TaskSuccess(uint256,bytes,address)", "TaskSuccess"), ("TaskAborted(uint256,string)", "TaskAborted"))}  # fmt: skip
        logs = self.w3.eth.get_logs(
            {"fromBlock": from_block, "toBlock": "latest", "address": [self.task.address], "topics": [list(events)]}
        )
        for log in logs:
            name = events[log["topics"][0]]
            args = getattr(self.task.events, name)().process_log(log)["args"]
            if args["taskId"] == task_id:
                return {"event": name, **dict(args)}
        return None

    def cancel_after_deadline(self, task_id: int) -> None:
        """Move the sandbox's clock past the task's deadline, then cancel it (dev methods)."""
        deadline = self.task.functions.getTask(task_id).call()[12]  # TaskInfo.timeout: the deadline
        now = self.w3.eth.get_block("latest")["timestamp"]
        skip = max(deadline - now + 1, 1)
        self.w3.provider.make_request("evm_increaseTime", [skip])
        self.w3.provider.make_request("evm_mine", [])
        self.say(f"task {task_id}: clock moved {skip} s past its deadline; cancelling")
        self.send(self.task.functions.cancelTask(task_id), gas=1_500_000)

    # -- Relay ------------------------------------------------------------

    def upload_args(self, task_id: int, args_json: str, timeout: float) -> None:
        params: dict[str, str | int] = {"task_args": args_json, "task_id": task_id}
        deadline = time.monotonic() + timeout
        while True:
            response = self.relay.post("/v1/inference_tasks", json={**params, **sign_request(params, self.account)})
            message = "" if response.is_success else relay_error(response)
            if response.is_success or message == "Task already uploaded":
                return
            if message != "Task not found on the Blockchain" or time.monotonic() > deadline:
                raise TaskFailed(f"Relay refused the args: {message}")
            time.sleep(0.5)  # the Relay has not seen the task on chain yet

    def download(self, task_id: int, index: int, timeout: float) -> bytes:
        params: dict[str, str | int] = {"image_num": str(index), "task_id": task_id}
        deadline = time.monotonic() + timeout
        while True:
            response = self.relay.get(f"/v1/inference_tasks/{task_id}/results/{index}", params=sign_request(params, self.account))
            if response.is_success:
                return response.content
            message = relay_error(response)
            if message != "Task results not uploaded" or time.monotonic() > deadline:
                raise TaskFailed(f"Relay refused image {index}: {message}")
            time.sleep(0.5)  # the result node is still uploading


def run(options: argparse.Namespace) -> dict[str, Any]:
    sandbox = json.loads(Path(options.sandbox).read_text())
    app = App(sandbox, log=not options.quiet)
    started = time.monotonic()
    args = {
        "base_model": "runwayml/stable-diffusion-v1-5",
        "prompt": options.prompt,
        "negative_prompt": "",
        "task_config": {"image_width": options.size, "image_height": options.size, "num_images": options.images,
                        "seed": options.seed, "steps": 25, "cfg": 5, "safety_checker": False},
    }  # fmt: skip
    args_json = json.dumps(args, separators=(",", ":"))  # the exact string hashed and uploaded
    cnx_before = app.cnx()
    task_id, block = app.create_task(args_json)
    app.say(f"task {task_id}: created in block {block}")
    app.upload_args(task_id, args_json, timeout=options.timeout)
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
