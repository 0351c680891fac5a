"""The sandbox's Relay across restarts: its state files, a damaged database, and a
chain that lost blocks the Relay had read."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from harness.sandbox import Sandbox, SandboxError, SandboxOptions
from harness.sandbox_state import SandboxState


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# ---------------------------------------------------------------- owner-only state


def test_the_state_folder_and_its_files_are_owner_only(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    state = SandboxState(tmp_path / "made" / "state")
    assert _mode(state.folder) == 0o700
    assert _mode(tmp_path) == 0o755  # a folder the sandbox did not make keeps its mode
    state.acquire()
    try:
        state.write_info({"app": {"private_key": "0x" + "11" * 32}})
        state.save_clock_offset(5)
        files = {path.name: _mode(path) for path in state.folder.iterdir()}
        assert files == {".lock": 0o600, "sandbox.json": 0o600, "clock.json": 0o600}
    finally:
        state.release()


def test_a_readable_sandbox_json_of_an_earlier_run_is_rewritten_owner_only(tmp_path: Path) -> None:
    state = SandboxState(tmp_path)
    state.info_path.write_text("{}")
    os.chmod(state.info_path, 0o644)
    state.write_info({"pid": 1})
    assert _mode(state.info_path) == 0o600
    assert state.previous_info() == {"pid": 1}


def test_state_set_aside_is_owner_only(tmp_path: Path) -> None:
    state = SandboxState(tmp_path)
    state.journal_path.write_text("")
    moved = state.set_aside()
    assert moved is not None and _mode(moved) == 0o700
    assert (moved / "chain.jsonl").exists() and not state.journal_path.exists()


# ---------------------------------------------------------------- a damaged Relay database


def _sandbox(state: Path, log: list[str]) -> Sandbox:
    options = SandboxOptions(state=state, rpc_port=0, relay_port=0, behaviours=[])
    return Sandbox(options, log=log.append)


@pytest.mark.parametrize("damage", ["not a database", "truncated"])
def test_a_damaged_relay_database_is_set_aside_and_the_chain_kept(tmp_path: Path, damage: str) -> None:
    first: list[str] = []
    with _sandbox(tmp_path, first) as sandbox:
        db = Path(sandbox.info["relay_db"])
        task_address = sandbox.info["contracts"]["task"]
    blocks = (tmp_path / "chain.jsonl").read_bytes()
    original = db.read_bytes()
    db.write_bytes(b"this is not SQLite " * 100 if damage == "not a database" else original[: len(original) // 2])
    damaged = db.read_bytes()

    log: list[str] = []
    with _sandbox(tmp_path, log) as sandbox:
        assert sandbox.info["contracts"]["task"] == task_address  # the chain was kept, not redeployed
        assert (tmp_path / "chain.jsonl").read_bytes().startswith(blocks)
        [line] = [line for line in log if "Relay's database" in line]
        assert f"the Relay's database {db} is damaged" in line and "the Relay starts afresh from the chain" in line
        [stale] = list(tmp_path.glob("stale-*"))
        assert f"moved it to {stale}" in line
        assert (stale / db.name).read_bytes() == damaged  # kept, for whoever wants to look
        # The new Relay answers (a 400 for an unknown task, not a 500 of a broken database).
        response = httpx.get(f"{sandbox.relay_url}/v1/inference_tasks/1", params={"timestamp": 1, "signature": "0x00"})
        assert response.status_code == 400 and response.json()["data"]["field_name"] == "signature"
        assert _mode(db) == 0o600


def test_a_relay_database_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    with _sandbox(tmp_path, []) as sandbox:
        db = Path(sandbox.info["relay_db"])
    for path in tmp_path.glob(db.name + "*"):
        path.unlink()
    db.mkdir()  # something that is no file at all: not "damaged", not ours to move
    with pytest.raises(SandboxError, match=f"cannot open the Relay's database {db}"):
        _sandbox(tmp_path, []).start()
    assert db.is_dir() and not list(tmp_path.glob("stale-*"))
