"""Constants and records of the Hydrogen Network protocol (PROTOCOL.md 2-3)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_hash.auto import keccak

__all__ = [
    "CNX",
    "ERROR_COMMITMENT",
    "NodeStatus",
    "ROUNDS",
    "STAKE_AMOUNT",
    "TOTAL_SUPPLY",
    "TaskInfo",
    "ZERO_HASH",
    "commitment_of",
    "task_deadline",
]

CNX = 10**18
TOTAL_SUPPLY = 4_351_443_962 * CNX
STAKE_AMOUNT = 400 * CNX
ROUNDS = 3
ZERO_HASH = b"\x00" * 32
ERROR_COMMITMENT = (1).to_bytes(32, "big")


class NodeStatus(IntEnum):
    QUIT = 0
    AVAILABLE = 1
    BUSY = 2
    PENDING_PAUSE = 3
    PENDING_QUIT = 4
    PAUSED = 5


def task_deadline(created_at: int, timeout: int) -> int:
    """A task's deadline: createTask sets it to its block's timestamp (`created_at`) plus
    Task's `timeout` parameter; once the chain's time is past it the task can be cancelled."""
    return created_at + timeout


def commitment_of(result: bytes, nonce: bytes) -> bytes:
    """The commitment a node submits: keccak256(result ++ nonce)."""
    if len(nonce) != 32:
        raise ValueError(f"a nonce is 32 bytes, got {len(nonce)}")
    return keccak(result + nonce)


@dataclass(frozen=True)
class TaskInfo:
    """`Task.getTask(taskId)`, field for field. A deleted task has id 0."""

    id: int
    creator: str
    task_hash: bytes
    data_hash: bytes
    is_success: bool
    selected_nodes: tuple[str, ...]
    commitments: tuple[bytes, ...]
    nonces: tuple[bytes, ...]
    results: tuple[bytes, ...]
    result_disclosed_rounds: tuple[int, ...]
    result_node: str
    aborted: bool
    timeout: int
    balance: int

    @property
    def exists(self) -> bool:
        return self.id != 0

    def round_of(self, node: str) -> int:
        """The round `node` was selected for; ValueError if it was not selected."""
        for round_, selected in enumerate(self.selected_nodes):
            if selected.lower() == node.lower():
                return round_
        raise ValueError(f"node {node} is not selected for task {self.id}")
