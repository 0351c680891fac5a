"""The in-memory chain's journal: a restart rebuilds the very same blocks."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from harness.contracts import deploy
from harness.protocol import CNX
from harness.rpc_dev import DevClock
from harness.sandbox_chain import ChainJournal, JournalMismatch, in_memory_chain


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
