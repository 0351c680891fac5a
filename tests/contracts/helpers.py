"""Plain helpers of the contract tests (the fixtures that use them are in conftest.py).

Amounts are CNX units (10**18 per CNX). Expected amounts in the tests are worked
out by hand from PROTOCOL.md 3, never read back from the contracts.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.types import TxReceipt

from hydrogen_harness.chain.contracts import CreatedTask, Deployment
from hydrogen_harness.protocol.events import TaskEvent
from hydrogen_harness.protocol.constants import CNX, STAKE_AMOUNT, TOTAL_SUPPLY, ZERO_HASH, NodeStatus, TaskInfo, commitment_of

__all__ = [
    "EMPTY_TASK",
    "FEE",
    "HONEST",
    "JoinNodes",
    "STAKE",
    "Balances",
    "RunningTask",
    "assert_invariants",
    "event_tuples",
    "flip_bits",
    "fresh_hash",
    "start_task",
]

FEE = 10 * CNX  # the default taskFeePerNode, f in PROTOCOL.md 3
STAKE = STAKE_AMOUNT  # 400 CNX
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

# The `join_nodes` fixture: join n fresh nodes, get them as address -> account.
JoinNodes = Callable[[int], dict[str, LocalAccount]]

# A two-image result: two 8-byte perceptual hashes.
HONEST = bytes.fromhex("f0e1d2c3b4a59687" "0123456789abcdef")

# What getTask reads for a deleted (or never created) task.
EMPTY_TASK = TaskInfo(
    id=0,
    creator=ZERO_ADDRESS,
    task_hash=ZERO_HASH,
    data_hash=ZERO_HASH,
    is_success=False,
    selected_nodes=(),
    commitments=(),
    nonces=(),
    results=(),
    result_disclosed_rounds=(),
    result_node=ZERO_ADDRESS,
    aborted=False,
    timeout=0,
    balance=0,
)

_counter = itertools.count(1)


def fresh_hash(label: str = "hash") -> bytes:
    """A 32-byte value never returned before in this process (task hashes, nonces)."""
    return keccak(f"contract-tests:{label}:{next(_counter)}".encode())


def flip_bits(result: bytes, bits: int, image: int = 0) -> bytes:
    """`result` with the `bits` lowest bits of image `image`'s 8-byte word flipped:
    a Hamming distance of exactly `bits` in that image, 0 in the others."""
    start = image * 8
    word = int.from_bytes(result[start : start + 8], "big") ^ ((1 << bits) - 1)
    return result[:start] + word.to_bytes(8, "big") + result[start + 8 :]


def event_tuples(deployment: Deployment, receipt: TxReceipt) -> list[tuple[Any, ...]]:
    """The Task events of a receipt as (name, fields...) without their location."""
    return [_as_tuple(event) for event in deployment.task.events(receipt)]


def _as_tuple(event: TaskEvent) -> tuple[Any, ...]:
    skip = {"block_number", "log_index", "tx_hash"}
    values = [getattr(event, f.name) for f in dataclasses.fields(event) if f.name not in skip]
    return (type(event).__name__, *values)


class Balances:
    """CNX balances of named addresses, taken now, to assert exact changes later."""

    def __init__(self, deployment: Deployment, **addresses: str) -> None:
        self.token = deployment.token
        self.addresses = addresses
        self.before = self._read()

    def _read(self) -> dict[str, int]:
        return {name: self.token.balance_of(address) for name, address in self.addresses.items()}

    def changes(self) -> dict[str, int]:
        after = self._read()
        return {name: after[name] - self.before[name] for name in self.addresses}

    def assert_changes(self, **expected: int) -> None:
        """Every named address changed by `expected[name]` (0 when not given)."""
        unknown = set(expected) - set(self.addresses)
        assert not unknown, f"not watched: {unknown}"
        wanted = {name: expected.get(name, 0) for name in self.addresses}
        got = self.changes()
        assert got == wanted, "balance changes in CNX:\n" + "\n".join(
            f"  {name}: got {got[name] / CNX:+}, expected {wanted[name] / CNX:+}" for name in self.addresses if got[name] != wanted[name]
        )


@dataclass
class RunningTask:
    """A created task with its app and the account of the node selected for each round."""

    contracts: Deployment
    app: LocalAccount
    created: CreatedTask
    nodes: tuple[LocalAccount, LocalAccount, LocalAccount]

    @property
    def id(self) -> int:
        return self.created.task_id

    def info(self) -> TaskInfo:
        return self.contracts.task.get_task(self.id)

    def commit(self, round_: int, result: bytes) -> TxReceipt:
        """Round `round_`'s node commits `result` with a fresh nonce."""
        nonce = fresh_hash("nonce")
        return self.contracts.task.submit_commitment(self.nodes[round_], self.id, round_, commitment_of(result, nonce), nonce)

    def disclose(self, round_: int, result: bytes) -> TxReceipt:
        return self.contracts.task.disclose(self.nodes[round_], self.id, round_, result)

    def report_error(self, round_: int) -> TxReceipt:
        return self.contracts.task.report_error(self.nodes[round_], self.id, round_)

    def report_uploaded(self, round_: int) -> TxReceipt:
        return self.contracts.task.report_uploaded(self.nodes[round_], self.id, round_)

    def pass_deadline(self) -> None:
        """Make the next block the first one after the task's timeout."""
        deadline = self.contracts.task.get_task(self.id).timeout
        if self.contracts.chain.now() < deadline:
            self.contracts.chain.set_next_timestamp(deadline + 1)

    def cancel(self, by: LocalAccount | None = None) -> TxReceipt:
        """Cancel in the first block after the deadline (by the creator unless `by`)."""
        self.pass_deadline()
        return self.contracts.task.cancel(by or self.app, self.id)

    def statuses(self) -> tuple[NodeStatus, ...]:
        return tuple(self.contracts.node.status(n.address) for n in self.nodes)

    def node_tasks(self) -> tuple[int, ...]:
        return tuple(self.contracts.task.node_task(n.address) for n in self.nodes)

    def balances(self, **extra: str) -> Balances:
        """Watch the app, the 3 nodes (r0, r1, r2), Task, Node and the owner."""
        return Balances(
            self.contracts,
            app=self.app.address,
            r0=self.nodes[0].address,
            r1=self.nodes[1].address,
            r2=self.nodes[2].address,
            task=self.contracts.task.address,
            node=self.contracts.node.address,
            owner=self.contracts.owner.address,
            **extra,
        )


def start_task(
    deployment: Deployment,
    app: LocalAccount,
    nodes: Mapping[str, LocalAccount],
    task_hash: bytes | None = None,
) -> RunningTask:
    """createTask by `app`; `nodes` maps every node that may be picked to its account."""
    created = deployment.task.create_task(app, task_hash or fresh_hash("task"))
    a, b, c = (nodes[address] for address in created.selected_nodes)
    return RunningTask(contracts=deployment, app=app, created=created, nodes=(a, b, c))


def assert_invariants(deployment: Deployment, nodes: Iterable[str], tasks: Iterable[int]) -> None:
    """PROTOCOL.md 3's invariants over the given nodes (all that ever joined) and
    tasks (all created): CNX supply, Task's balance = live escrows, Node's balance =
    stakes of non-QUIT nodes, node counts, one task per node at most."""
    token, node, task = deployment.token, deployment.node, deployment.task
    assert token.total_supply() == TOTAL_SUPPLY
    live = [info for info in (task.get_task(t) for t in tasks) if info.exists]
    assert token.balance_of(task.address) == sum(info.balance for info in live)
    statuses = {address: node.status(address) for address in nodes}
    joined = [a for a, s in statuses.items() if s != NodeStatus.QUIT]
    assert token.balance_of(node.address) == STAKE * len(joined)
    assert node.total_nodes() == len(joined)
    assert node.available_nodes() == sum(1 for s in statuses.values() if s == NodeStatus.AVAILABLE)
    by_id = {info.id: info for info in live}
    for address, status in statuses.items():
        bound = task.node_task(address)
        if status in (NodeStatus.BUSY, NodeStatus.PENDING_PAUSE, NodeStatus.PENDING_QUIT):
            assert bound in by_id and address in by_id[bound].selected_nodes, f"{address} is {status.name} without a live task"
        else:
            assert bound == 0, f"{address} is {status.name} but bound to task {bound}"
