"""An H-net application: one Stable Diffusion task, from the wallet to the images.

Written as for the real network, with web3, eth-account and httpx only: it is
given the JSON-RPC URL, the Relay URL, the CNX token and Task contract addresses
and a funded key. It signs Relay requests with the wall clock (`time.time`),
waits with `time.sleep` between polls, and retries what a network may throw at
it: Relay answers 502/503/504, dropped connections, a Relay that has not seen the
task on chain yet, images still being uploaded.

The workflow (PROTOCOL.md 1): approve the Task contract to take 3 fees of CNX;
createTask(keccak(args JSON), 0); take the task id from the TaskCreated log;
upload the args JSON to the Relay; wait for TaskSuccess or TaskAborted, and
cancel the task (for a refund) once the chain's time passes its deadline;
download the images, one per 8 bytes of the result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError

from cnx_app.relay_signing import sign_request

__all__ = ["CnxApp", "TaskFailed", "TaskReport", "args_json"]

ZERO_HASH = b"\x00" * 32
_ABI_DIR = Path(__file__).resolve().parent / "abi"
_TRANSIENT = {429, 502, 503, 504}  # worth another try; any other error answer is final
_TASK_INFO_TIMEOUT = 12  # getTask(...).timeout: the task's deadline (Unix seconds)


class TaskFailed(Exception):
    """The task could not be run to an outcome; the message says where it stopped."""


@dataclass
class TaskReport:
    """How a task ended: "success" (with the images), "aborted" or "cancelled"."""

    task_id: int
    outcome: str
    reason: str = ""
    result: bytes = b""
    images: list[bytes] = field(default_factory=list)
    create_block: int = 0
    cnx_before: int = 0
    cnx_after: int = 0
    seconds: float = 0.0

    @property
    def spent(self) -> int:
        """CNX units the task cost the wallet: fees paid minus refunds."""
        return self.cnx_before - self.cnx_after


def args_json(args: dict[str, Any]) -> str:
    """The exact task-args string that is hashed on chain and uploaded to the Relay."""
    return json.dumps(args, separators=(",", ":"))


def _abi(name: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((_ABI_DIR / f"{name}.json").read_text())
    return loaded


def relay_error(response: httpx.Response) -> str:
    """The Relay's message in an error answer (validation errors carry it in data)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    return str(data.get("message") or body.get("message") or f"HTTP {response.status_code}")


class CnxApp:
    """See the module docstring. `poll` is the seconds between polls, `timeout` the
    most a step (an upload, a download, waiting for the outcome) may take."""

    def __init__(
        self,
        rpc_url: str,
        relay_url: str,
        token: str,
        task: str,
        key: str,
        *,
        poll: float = 0.1,
        timeout: float = 60.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        self.relay = httpx.Client(base_url=relay_url, timeout=30)
        self.account: LocalAccount = Account.from_key(key)
        self.token = self.w3.eth.contract(address=Web3.to_checksum_address(token), abi=_abi("token"))
        self.task = self.w3.eth.contract(address=Web3.to_checksum_address(task), abi=_abi("task"))
        self.poll = poll
        self.timeout = timeout
        self._log = log

    def close(self) -> None:
        self.relay.close()

    def __enter__(self) -> CnxApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def say(self, message: str) -> None:
        if self._log is not None:
            self._log(message)

    # ---------------------------------------------------------------- chain

    def send(self, call: Any, gas: int) -> Any:
        """Sign and send a contract call with an explicit gas limit; the receipt, or TaskFailed
        with the revert reason, read as H-net clients do: by replaying the call on the block before."""
        tx = call.build_transaction(
            {"from": self.account.address, "gas": gas,
             "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending")}
        )  # fmt: skip
        tx_hash = self.w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout, poll_latency=self.poll)
        if receipt["status"] != 1:
            replay: Any = {k: tx[k] for k in ("from", "to", "data", "value", "gas")}
            try:
                self.w3.eth.call(replay, block_identifier=receipt["blockNumber"] - 1)
                reason = "unknown (the replay did not revert)"
            except ContractLogicError as exc:
                reason = str(exc.message).removeprefix("execution reverted: ")
            raise TaskFailed(f"{call.fn_name} reverted: {reason}")
        return receipt

    def cnx(self) -> int:
        return int(self.token.functions.balanceOf(self.account.address).call())

    def create_task(self, task_args: str) -> tuple[int, int]:
        """approve + createTask; returns (task id, block number)."""
        fee = self.task.functions.taskFeePerNode().call()
        self.send(self.token.functions.approve(self.task.address, 3 * fee), gas=100_000)
        task_hash = Web3.keccak(text=task_args)  # of the exact string uploaded later
        receipt = self.send(self.task.functions.createTask(task_hash, ZERO_HASH), gas=3_000_000)
        # Find the event by its topic: the log position changes with the allowance mode.
        created = self.task.events.TaskCreated()
        topic = Web3.keccak(text="TaskCreated(uint256,address,address,bytes32,bytes32,uint256)")
        for log in receipt["logs"]:
            if log["address"] == self.task.address and log["topics"][0] == topic:
                return int(created.process_log(log)["args"]["taskId"]), int(receipt["blockNumber"])
        raise TaskFailed("createTask succeeded without a TaskCreated log")

    def outcome(self, task_id: int, from_block: int) -> dict[str, Any] | None:
        """TaskSuccess or TaskAborted of this task, if emitted yet (taskId is not indexed: decode)."""
        events = {Web3.keccak(text=sig): name for sig, name in (
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

    def deadline(self, task_id: int) -> int:
        """The task's deadline on chain (0 once the task is settled and deleted)."""
        return int(self.task.functions.getTask(task_id).call()[_TASK_INFO_TIMEOUT])

    def chain_time(self) -> int:
        """The latest block's timestamp: the time cancelTask is judged by."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def cancel(self, task_id: int) -> None:
        self.send(self.task.functions.cancelTask(task_id), gas=1_000_000)

    # ---------------------------------------------------------------- Relay

    def _relay_call(self, what: str, send: Callable[[], httpx.Response], retry: tuple[str, ...], timeout: float) -> httpx.Response:
        """`send()` (it signs afresh each time) until success; retries transient failures and
        the answers in `retry`, sleeping `poll` s between tries, for at most `timeout` s."""
        give_up = time.monotonic() + timeout
        while True:
            try:
                response = send()
            except httpx.TransportError as exc:  # refused, dropped, timed out: try again
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return response
                problem = relay_error(response)
                if response.status_code not in _TRANSIENT and problem not in retry:
                    raise TaskFailed(f"Relay refused {what}: {problem}")
            if time.monotonic() > give_up:
                raise TaskFailed(f"{what}: still failing after {timeout} s: {problem}")
            self.say(f"{what}: {problem}; retrying")
            time.sleep(self.poll)

    def upload_args(self, task_id: int, task_args: str, timeout: float | None = None) -> None:
        params: dict[str, str | int] = {"task_args": task_args, "task_id": task_id}

        def send() -> httpx.Response:
            return self.relay.post("/v1/inference_tasks", json={**params, **sign_request(params, self.account)})

        try:
            # The Relay may not have seen the task on chain yet.
            self._relay_call("the args upload", send, ("Task not found on the Blockchain",), timeout or self.timeout)
        except TaskFailed as exc:
            if "Task already uploaded" not in str(exc):  # an earlier try got through, its answer was lost
                raise

    def download(self, task_id: int, index: int, timeout: float | None = None) -> bytes:
        params: dict[str, str | int] = {"image_num": str(index), "task_id": task_id}
        path = f"/v1/inference_tasks/{task_id}/results/{index}"

        def send() -> httpx.Response:
            return self.relay.get(path, params=sign_request(params, self.account))

        # The result node may still be uploading.
        return self._relay_call(f"image {index}", send, ("Task results not uploaded",), timeout or self.timeout).content

    # ---------------------------------------------------------------- the workflow

    def wait(self, task_id: int, from_block: int, timeout: float | None = None) -> dict[str, Any]:
        """Poll for the task's outcome; once the chain's time passes its deadline, cancel
        it (the refund comes with the TaskAborted "Task Cancelled" this emits)."""
        give_up = time.monotonic() + (timeout or self.timeout)
        deadline: int | None = None
        while True:
            found = self.outcome(task_id, from_block)
            if found is not None:
                return found
            if deadline is None:
                deadline = self.deadline(task_id)
            if self.chain_time() > deadline:
                self.say(f"task {task_id}: past its deadline; cancelling")
                try:
                    self.cancel(task_id)
                except TaskFailed as exc:  # settled meanwhile, or the deadline is a block away
                    if "Task not exist" not in str(exc) and "not exceeded the deadline" not in str(exc):
                        raise
                continue
            if time.monotonic() > give_up:
                raise TaskFailed(f"task {task_id}: no outcome within {timeout or self.timeout} s")
            time.sleep(self.poll)

    def run(self, args: dict[str, Any]) -> TaskReport:
        """One task from start to finish; raises TaskFailed if it cannot get an outcome."""
        started = time.monotonic()
        task_args = args_json(args)
        report = TaskReport(task_id=0, outcome="", cnx_before=self.cnx())
        report.task_id, report.create_block = self.create_task(task_args)
        self.say(f"task {report.task_id}: created in block {report.create_block}")
        self.upload_args(report.task_id, task_args)
        found = self.wait(report.task_id, report.create_block)
        if found["event"] == "TaskAborted":
            report.reason = str(found["reason"])
            report.outcome = "cancelled" if report.reason == "Task Cancelled" else "aborted"
        else:
            report.outcome = "success"
            report.result = bytes(found["result"])
            report.images = [self.download(report.task_id, i) for i in range(len(report.result) // 8)]
        self.say(f"task {report.task_id}: {report.outcome} {report.reason}".rstrip())
        report.cnx_after = self.cnx()
        report.seconds = time.monotonic() - started
        return report
