"""A simulated node's database: its tasks in flight, kept in the sandbox's state folder.

A real H-net node keeps each task's state in its own database (the result it
committed to, the nonce, how far it got), so a restarted node discloses, uploads
and reports the tasks it had started. The sandbox's nodes do the same with one
small JSON file per node, `<state>/nodes/<address>.json`:

    {"format": 1, "deployment": "<Task address>@<deployment block hash>",
     "tasks": {"<task id>": {<the node's record of the task>}, ...}}

Each change rewrites the file whole (a temporary file, fsynced, renamed over the
old one, the folder fsynced), so a `kill -9` at any moment leaves the old or the
new file, never half of one; the node saves before it sends the transaction that
depends on the record (the result before its commitment), so a crash between the
two never leaves a commitment it cannot disclose. A file of another deployment
(a `--reset` chain, contracts redeployed) is ignored and replaced: task ids
restart at 1 with each deployment. Only tasks in flight are kept: a finished
task's record is dropped.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["NodeTaskFile"]

_FORMAT = 1


class NodeTaskFile:
    """One node's task records (task id -> JSON object), saved atomically to `path`.

    `damaged` says why a file that exists could not be read (its records are then
    lost: the sandbox cancels those tasks after their deadline)."""

    def __init__(self, path: Path, deployment: str) -> None:
        self.path = path
        self.deployment = deployment
        self.damaged: str | None = None
        self._lock = threading.Lock()
        self._records: dict[int, dict[str, Any]] = self._read()

    def _read(self) -> dict[int, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
            if data.get("format") != _FORMAT or data.get("deployment") != self.deployment:
                return {}  # another deployment's tasks: not ours to resume
            return {int(task_id): dict(record) for task_id, record in data["tasks"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.damaged = f"{self.path} cannot be read ({type(exc).__name__}: {exc})"
            return {}

    def load(self) -> dict[int, dict[str, Any]]:
        """Every saved record, by task id (copies)."""
        with self._lock:
            return {task_id: dict(record) for task_id, record in self._records.items()}

    def save(self, task_id: int, record: dict[str, Any]) -> None:
        """Keep `record` for `task_id`; on disk when this returns."""
        with self._lock:
            self._records[task_id] = dict(record)
            self._write()

    def drop(self, task_id: int) -> None:
        with self._lock:
            if self._records.pop(task_id, None) is not None:
                self._write()

    def clear(self) -> None:
        with self._lock:
            if self._records or self.path.exists():
                self._records.clear()
                self._write()

    def _write(self) -> None:
        payload = {
            "format": _FORMAT,
            "deployment": self.deployment,
            "tasks": {str(task_id): record for task_id, record in sorted(self._records.items())},
        }
        data = json.dumps(payload, sort_keys=True).encode()
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        # Owner-only, as the node's key material would be on a real node.
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        # The rename itself must reach the disk too, or a crash could bring back the old file.
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
