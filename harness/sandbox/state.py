"""The sandbox's state folder (`.sandbox/` by default) and `sandbox.json`.

What lives there:
- `sandbox.json`: what an application needs (URLs, chain id, addresses, ABIs,
  keys), rewritten at each start; the previous one tells a restart which
  contracts it may reuse;
- `chain.jsonl` and `clock.json`: the in-memory chain's blocks and its dev-clock
  offset (see `sandbox_chain.ChainJournal`);
- `relay-<chain id>-<Task address>-<deployment block hash>.sqlite`: the Relay's
  database, one per deployment, since task ids restart at 1 with each;
- `anvil.log` with `--anvil`; `stale-<time>/`: state set aside when it could not
  be reused.

`sandbox.json` holds the app's and the owner's private keys, and the Relay's
databases what apps uploaded: everything here is written owner-only (files 0600,
the folder and `stale-*/` 0700 when the sandbox makes them).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, NotRequired, TextIO, TypedDict

__all__ = ["AccountInfo", "SandboxInfo", "SandboxState", "StateInUse"]


class AccountInfo(TypedDict):
    address: str | None
    private_key: str | None


class NodeInfo(TypedDict):
    address: str
    behaviour: str


class DeploymentInfo(TypedDict):
    block: int
    block_hash: str


class SandboxInfo(TypedDict):
    """`sandbox.json`: what a running sandbox tells its users (and its next start)."""

    rpc_url: str
    relay_url: str
    dashboard_url: NotRequired[str]
    chain_id: int
    contracts: dict[str, str]  # token, node, task
    abi: dict[str, list[dict[str, Any]]]
    app: AccountInfo
    owner: AccountInfo
    nodes: list[NodeInfo]
    chain: str  # "in-memory" or "anvil"
    deployment: DeploymentInfo
    code_version: str
    relay_db: str
    pid: int
    started_at: int

_OWNED = ("sandbox.json", "chain.jsonl", "clock.json", "anvil.log")
_RELAY_GLOB = "relay-*.sqlite*"


class StateInUse(RuntimeError):
    """Another sandbox runs on this state folder."""


class SandboxState:
    """Paths and files of one state folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # Only the folder we make is ours to restrict; its parents keep the default.
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_file: TextIO | None = None

    def acquire(self) -> None:
        """Hold the folder for this process (two sandboxes would corrupt each other's
        journal and database); the OS releases it when the process ends, however it ends."""
        handle = os.fdopen(os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise StateInUse(f"{self.folder} is in use by sandbox process {owner}: stop it or pass another --state") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def release(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    @property
    def info_path(self) -> Path:
        return self.folder / "sandbox.json"

    @property
    def journal_path(self) -> Path:
        return self.folder / "chain.jsonl"

    @property
    def anvil_log(self) -> Path:
        return self.folder / "anvil.log"

    def relay_db(self, chain_id: int, task_address: str, deployment_hash: str) -> Path:
        return self.folder / f"relay-{chain_id}-{task_address[2:10].lower()}-{deployment_hash[2:10].lower()}.sqlite"

    # ------------------------------------------------------------ sandbox.json

    def previous_info(self) -> dict[str, Any] | None:
        """The last run's sandbox.json, or None if absent or unreadable."""
        try:
            info = json.loads(self.info_path.read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def write_info(self, info: SandboxInfo) -> None:
        # Written whole then renamed: a client polling for the file never reads half of it.
        _write_private(self.info_path, json.dumps(info, indent=2) + "\n")

    # ------------------------------------------------------------ dev clock

    def clock_offset(self) -> int:
        try:
            return int(json.loads((self.folder / "clock.json").read_text())["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def save_clock_offset(self, offset: int) -> None:
        _write_private(self.folder / "clock.json", json.dumps({"offset": offset}) + "\n")

    # ------------------------------------------------------------ starting afresh

    def _state_files(self) -> list[Path]:
        files = [self.folder / name for name in _OWNED]
        files += sorted(self.folder.glob(_RELAY_GLOB))
        return [f for f in files if f.exists()]

    def clear(self) -> None:
        """Delete the chain, the Relay databases and sandbox.json (for --reset)."""
        for path in self._state_files():
            path.unlink()

    def set_aside(self, keep: tuple[str, ...] = ()) -> Path | None:
        """Move the chain journal and Relay databases into stale-<time>/; returns it."""
        files = [f for f in self._state_files() if f.name not in keep and f.name != "sandbox.json"]
        if not files:
            return None
        return self._move_to_stale(files)

    def set_aside_relay_db(self, db: Path) -> Path:
        """Move one Relay database (with its -wal and -shm files) into stale-<time>/,
        leaving the chain where it is; returns the folder."""
        files = [f for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")) if f.exists()]
        return self._move_to_stale(files)

    def _move_to_stale(self, files: list[Path]) -> Path:
        target = self.folder / time.strftime("stale-%Y%m%d-%H%M%S")
        target.mkdir(mode=0o700, exist_ok=True)
        for path in files:
            shutil.move(str(path), target / path.name)
        return target


def _write_private(path: Path, text: str) -> None:
    """Write `path` whole, owner-only (0600), through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # one left by a crash may have other permissions
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
