"""The sandbox's Relay across restarts: its state files, a damaged database, and a
chain that lost blocks the Relay had read."""

from __future__ import annotations

import os
from pathlib import Path

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
