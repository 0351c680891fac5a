"""What the fake Relay stores about a task, and the TASK JSON it renders from it.

The records mirror the real Relay's two database tables (`inference_tasks` and
`selected_nodes`, both gorm models with ID/CreatedAt/UpdatedAt/DeletedAt), so
`task_json` can answer with exactly the real TASK shape. Times are Unix seconds
from the service clock, rendered as RFC 3339 in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from hydrogen_harness.client.relay import RelayTaskStatus

__all__ = ["RowKind", "SelectedNodeRecord", "TaskRecord", "rfc3339", "task_json"]


class RowKind(StrEnum):
    """The tables whose rows get an `ID`, each numbered from 1 like gorm's."""

    TASK = "task"
    SELECTED_NODE = "selected_node"


@dataclass(frozen=True)
class SelectedNodeRecord:
    """One node selected for a task, by round; the result node carries the result."""

    row_id: int
    round: int
    address: str  # checksummed
    created_at: int
    updated_at: int
    result: bytes = b""
    is_result_selected: bool = False


@dataclass(frozen=True)
class TaskRecord:
    """A task as the Relay knows it: from the chain's events plus what was uploaded."""

    row_id: int
    task_id: int
    creator: str  # checksummed
    task_hash: bytes
    data_hash: bytes
    status: RelayTaskStatus
    created_at: int
    updated_at: int
    task_args: str = ""
    selected_nodes: tuple[SelectedNodeRecord, ...] = field(default=())
    image_count: int = 0
    # The blocks of the events this record came from (None: not seen, or stored by
    # a Relay older than these fields), so that when the chain loses blocks the
    # Relay had read, it can undo exactly what they brought (`ChainFollower.resume`).
    created_block: int | None = None
    success_block: int | None = None
    aborted_block: int | None = None

    @property
    def result_node(self) -> SelectedNodeRecord | None:
        for node in self.selected_nodes:
            if node.is_result_selected:
                return node
        return None

    def is_selected(self, address: str) -> bool:
        return any(node.address == address for node in self.selected_nodes)


# Remembered: a TASK answer renders 8 times, most of them the same few seconds.
@lru_cache(maxsize=4096)
def rfc3339(timestamp: int) -> str:
    """Unix seconds as RFC 3339 in UTC, as Go writes a whole-second UTC time."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _node_json(task: TaskRecord, node: SelectedNodeRecord) -> dict[str, Any]:
    return {
        "ID": node.row_id,
        "CreatedAt": rfc3339(node.created_at),
        "UpdatedAt": rfc3339(node.updated_at),
        "DeletedAt": None,
        "InferenceTaskID": task.row_id,
        "NodeAddress": node.address,
        # The real Relay stores hexutil.Encode(result) for the result node only.
        "Result": _hex(node.result) if node.is_result_selected else "",
        "IsResultSelected": node.is_result_selected,
    }


def task_json(task: TaskRecord, *, with_nodes: bool) -> dict[str, Any]:
    """The TASK record; `SelectedNodes` is null unless `with_nodes` (as in the real POST answer)."""
    return {
        "ID": task.row_id,
        "CreatedAt": rfc3339(task.created_at),
        "UpdatedAt": rfc3339(task.updated_at),
        "DeletedAt": None,
        "task_args": task.task_args,
        "task_id": task.task_id,
        "creator": task.creator,
        "task_hash": _hex(task.task_hash),
        "data_hash": _hex(task.data_hash),
        "status": int(task.status),
        "SelectedNodes": [_node_json(task, node) for node in task.selected_nodes] if with_nodes else None,
    }
