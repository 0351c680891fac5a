"""The in-memory chain's journal: a restart rebuilds the very same blocks."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from hydrogen_harness.chain.contracts import deploy
from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.jsonrpc.dev import DevClock
from hydrogen_harness.sandbox.journal import ChainJournal, JournalCorrupt, JournalMismatch, in_memory_chain


def test_replay_rebuilds_identical_blocks_after_reverts_and_time_jumps(tmp_path: Path) -> None:
    clock = DevClock()
    chain = in_memory_chain(3, threading.RLock(), clock.now)
    journal = ChainJournal(tmp_path / "chain.jsonl", seed=3)
    contracts = deploy(chain)
    app = contracts.new_app(cnx=100 * CNX)
    journal.sync(chain)
    snapshot = chain.snapshot()
    contracts.token.transfer(app, contracts.task.address, CNX)
    journal.sync(chain)
    chain.revert(snapshot)  # the journal must drop the reverted block ...
    clock.advance(3600)
    chain.mine()  # ... and keep blocks whose time jumped
    contracts.token.approve(app, contracts.task.address, 5 * CNX)
    assert journal.sync(chain) == 2

    rebuilt = in_memory_chain(3, threading.RLock(), DevClock().now)
    assert ChainJournal(tmp_path / "chain.jsonl", seed=3).replay(rebuilt) == chain.block_number
    for number in range(chain.block_number + 1):
        assert rebuilt.w3.eth.get_block(number)["hash"] == chain.w3.eth.get_block(number)["hash"]


def test_a_journal_that_does_not_rebuild_is_refused(tmp_path: Path) -> None:
    chain = in_memory_chain(3, threading.RLock(), DevClock().now)
    path = tmp_path / "chain.jsonl"
    journal = ChainJournal(path, seed=3)
    deploy(chain)
    journal.sync(chain)
    lines = path.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["ts"] += 1  # a block stamped one second later has another hash
    path.write_text("\n".join([*lines[:2], json.dumps(entry), *lines[3:]]) + "\n")
    with pytest.raises(JournalMismatch, match="block 2"):
        ChainJournal(path, seed=3).replay(in_memory_chain(3, threading.RLock(), DevClock().now))
    with pytest.raises(JournalMismatch, match="seed"):
        ChainJournal(path, seed=4).replay(in_memory_chain(4, threading.RLock(), DevClock().now))


def _journaled(tmp_path: Path) -> tuple[Path, int]:
    chain = in_memory_chain(3, threading.RLock(), DevClock().now)
    path = tmp_path / "chain.jsonl"
    deploy(chain)
    ChainJournal(path, seed=3).sync(chain)
    return path, chain.block_number


def test_a_torn_last_line_is_dropped_and_the_file_repaired(tmp_path: Path) -> None:
    path, blocks = _journaled(tmp_path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 25])  # a crash in the middle of the last block's line
    journal = ChainJournal(path, seed=3)
    assert journal.replay(in_memory_chain(3, threading.RLock(), DevClock().now)) == blocks - 1
    assert journal.repaired is not None and "cut short" in journal.repaired
    assert path.read_bytes() == whole[: whole.rindex(b"\n", 0, len(whole) - 1) + 1]  # the good prefix, nothing after it
    again = ChainJournal(path, seed=3)
    assert again.replay(in_memory_chain(3, threading.RLock(), DevClock().now)) == blocks - 1
    assert again.repaired is None


def test_a_last_line_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    path, blocks = _journaled(tmp_path)
    path.write_bytes(path.read_bytes()[:-1])
    assert ChainJournal(path, seed=3).replay(in_memory_chain(3, threading.RLock(), DevClock().now)) == blocks
    assert path.read_bytes().endswith(b"}\n")


@pytest.mark.parametrize("damage", ["garbage", "gap"])
def test_damage_before_the_last_line_is_refused(tmp_path: Path, damage: str) -> None:
    path, _ = _journaled(tmp_path)
    lines = path.read_text().splitlines()
    lines[3] = "{not json" if damage == "garbage" else lines[4]  # a damaged line, or a block missing
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(JournalCorrupt, match="line 4 is damaged"):
        ChainJournal(path, seed=3).replay(in_memory_chain(3, threading.RLock(), DevClock().now))


def test_the_journal_is_private_to_its_owner(tmp_path: Path) -> None:
    path, _ = _journaled(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600


def _run_once(state: Path) -> None:
    from hydrogen_harness.sandbox.core import Sandbox, SandboxOptions

    with Sandbox(SandboxOptions(state=state, rpc_port=0, relay_port=0, behaviours=["honest"] * 3), log=lambda _: None):
        pass


@pytest.mark.parametrize("damage", ["journal-halved", "info-deleted"])
def test_a_journal_that_lost_the_deployment_is_refused_not_redeployed(tmp_path: Path, damage: str) -> None:
    """Redeploying silently would put new contracts under the apps that know the old addresses."""
    from hydrogen_harness.sandbox.core import Sandbox, SandboxError, SandboxOptions

    _run_once(tmp_path)
    journal = tmp_path / "chain.jsonl"
    if damage == "journal-halved":
        journal.write_bytes(journal.read_bytes()[: journal.stat().st_size // 2])
    else:
        (tmp_path / "sandbox.json").unlink()
    before = journal.read_bytes()
    with pytest.raises(SandboxError, match="--reset"):
        Sandbox(SandboxOptions(state=tmp_path, rpc_port=0, relay_port=0, behaviours=["honest"] * 3), log=lambda _: None).start()
    assert journal.read_bytes() == before[: len(journal.read_bytes())]  # nothing appended, nothing redeployed
