"""Properties of the pure pieces of the protocol, checked against the contracts.

- similarity (PROTOCOL.md 3): the contract's answer equals `hydrogen_harness.protocol.phash.similar`,
  through a probe that calls Task's own `_similar` (cheap, many examples) and
  through two real disclosures (success iff similar; fewer examples);
- commitments (2.3): a disclosure is accepted iff keccak256(result ++ stored nonce)
  equals the stored commitment, i.e. iff result and nonce both match;
- selection (2.4): createTask picks 3 distinct nodes that were AVAILABLE, whatever
  mix of statuses the nodes are in, and `getSelectedNode` predicts them in the
  block the transaction goes into.

Request signing round trips are in tests/unit/test_signing.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import given, note, settings
from hypothesis import strategies as st

from hydrogen_harness.chain.compiler import compile_contract
from hydrogen_harness.protocol.events import TaskAborted, TaskSuccess
from hydrogen_harness.protocol.phash import similar
from hydrogen_harness.plugin import expect_revert
from hydrogen_harness.protocol.constants import ZERO_HASH, NodeStatus, commitment_of
from tests.properties import model
from tests.properties.profiles import budget, seeded
from tests.properties.results import nonce_for, words
from tests.properties.world import World, backend_name, new_chain, source_folder

PROBE_SOURCE = Path(__file__).parent / "probe" / "SimilarityProbe.vy"


# ------------------------------------------------------------ result pairs


@st.composite
def result_pairs(draw: st.DrawFn, non_empty: bool = False) -> tuple[bytes, bytes, int]:
    """Two results and a threshold, concentrated on the similarity boundary: words
    differing by threshold-1, threshold or threshold+1 bits, other lengths, lengths
    that are not a multiple of 8 (identical ones included)."""
    threshold = draw(st.integers(0, 65))
    count = draw(st.integers(1 if non_empty else 0, 10))
    a_words = draw(st.lists(st.integers(0, 2**64 - 1), min_size=count, max_size=count))
    shape = draw(st.sampled_from(("near", "near", "near", "other length", "garbled", "garbled identical")))
    if shape == "other length":
        other = draw(st.integers(1 if non_empty else 0, 10).filter(lambda n: n != count))
        b_words = draw(st.lists(st.integers(0, 2**64 - 1), min_size=other, max_size=other))
        return words(a_words), words(b_words), threshold
    b_words = []
    # One shuffle of the 64 bit positions per pair, turned by a drawn offset for each word:
    # each word's flipped bits are still a uniform choice, for 65 draws instead of a
    # 64-draw shuffle per word (which was most of this strategy's time).
    order = draw(st.permutations(range(64))) if a_words else []
    for value in a_words:
        flips = draw(st.sampled_from((0, threshold - 1, threshold, threshold + 1, 64)) | st.integers(0, 64))
        flips = max(0, min(flips, 64))
        turn = draw(st.integers(0, 63))
        for bit in order[:flips]:
            value ^= 1 << ((bit + turn) % 64)
        b_words.append(value)
    a, b = words(a_words), words(b_words)
    if shape.startswith("garbled") and a:
        cut = draw(st.integers(1, 7))
        a = a[:-cut]
        b = a if shape == "garbled identical" else b[:-cut]
    return a, b, threshold


# ------------------------------------------------------------ similarity: the probe


Probe = Callable[[bytes, bytes, int], bool]


def deploy_probe(folder: Path, backend: str) -> Probe:
    """SimilarityProbe compiled beside the Task.vy under test (copied into `folder`), on a
    `backend` chain of its own; returns its `similar(a, b, threshold)`."""
    for source in source_folder().glob("*.vy"):
        shutil.copy(source, folder / source.name)
    shutil.copy(PROBE_SOURCE, folder / PROBE_SOURCE.name)
    compiled = compile_contract("SimilarityProbe", folder)
    chain = new_chain(backend, 11)
    contract = chain.deploy(chain.faucet, compiled.abi, compiled.bytecode)
    return lambda a, b, t: bool(chain.call(contract.functions.similar(a, b, t)))


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    """The probe on the property tests' backend."""
    return deploy_probe(tmp_path_factory.mktemp("probe"), backend_name())


def test_similarity_probe(probe: Probe) -> None:
    """Task's `_similar` answers as `hydrogen_harness.protocol.phash.similar` (and as the ghost ledger's)."""
    check_similarity_probe(probe, budget().similarity_probe)


def check_similarity_probe(probe: Probe, examples: int) -> None:
    @seeded
    @settings(max_examples=examples)
    @given(pair=result_pairs())
    def check(pair: tuple[bytes, bytes, int]) -> None:
        a, b, threshold = pair
        expected = similar(a, b, threshold)
        assert model.similar(a, b, threshold) == expected, "the ghost ledger's similarity rule differs from hydrogen_harness.protocol.phash"
        assert probe(a, b, threshold) == expected, f"Task._similar({a.hex()}, {b.hex()}) at threshold {threshold}"

    check()


# ------------------------------------------------------------ on chain: one task over the 3 pre-joined nodes


def _start_task(world: World, task_hash: bytes) -> tuple[int, list[LocalAccount]]:
    """app1 creates a task; only node1..node3 are joined, so all three are selected."""
    created = world.d.task.create_task(world.apps["app1"], task_hash)
    by_address = {a.address: a for a in world.nodes.values()}
    return created.task_id, [by_address[n] for n in created.selected_nodes]


def test_similarity_on_chain(world: World) -> None:
    """Two disclosures make the task succeed iff their results are similar."""
    check_similarity_on_chain(world, budget().similarity_on_chain)


def check_similarity_on_chain(world: World, examples: int) -> None:
    task = world.d.task

    @seeded
    @settings(max_examples=examples)
    @given(pair=result_pairs(non_empty=True))
    def check(pair: tuple[bytes, bytes, int]) -> None:
        a, b, threshold = pair
        expected = similar(a, b, threshold)
        note(f"a={a.hex()} b={b.hex()} threshold={threshold} similar={expected}")
        with world.chain.isolation():
            task.update_distance_threshold(world.owner, threshold)
            task_id, nodes = _start_task(world, b"\x51" * 32)
            for round_, result in enumerate((a, b, a)):
                nonce = nonce_for(task_id, round_)
                task.submit_commitment(nodes[round_], task_id, round_, commitment_of(result, nonce), nonce)
            task.disclose(nodes[0], task_id, 0, a)
            events = task.events(task.disclose(nodes[1], task_id, 1, b))
            successes = [e for e in events if isinstance(e, TaskSuccess)]
            assert not [e for e in events if isinstance(e, TaskAborted)]
            assert bool(successes) == expected, f"second disclosure emitted {events}"
            assert task.get_task(task_id).is_success == expected
            if successes:
                assert successes[0].result == a and successes[0].result_node == nodes[0].address

    check()


# ------------------------------------------------------------ commitments


@st.composite
def disclosures(draw: st.DrawFn) -> tuple[bytes, bytes, bytes, bytes]:
    """(committed result, committed nonce, stored nonce, disclosed result)."""
    committed = draw(st.binary(min_size=1, max_size=80))
    nonce = draw(st.binary(min_size=32, max_size=32).filter(lambda n: n != ZERO_HASH))
    stored = nonce if draw(st.booleans()) else draw(st.binary(min_size=32, max_size=32).filter(lambda n: n not in (ZERO_HASH, nonce)))
    how = draw(st.sampled_from(("same", "same", "one bit", "shorter", "longer", "other")))
    if how == "same":
        disclosed = committed
    elif how == "one bit":
        at = draw(st.integers(0, len(committed) - 1))
        disclosed = committed[:at] + bytes([committed[at] ^ (1 << draw(st.integers(0, 7)))]) + committed[at + 1 :]
    elif how == "shorter" and len(committed) > 1:
        disclosed = committed[:-1]
    elif how == "longer" and len(committed) < 80:
        disclosed = committed + nonce[:1]  # the nonce's first byte: a shifted split of the same bytes
    else:
        disclosed = draw(st.binary(min_size=1, max_size=80))
    return committed, nonce, stored, disclosed


def test_commitment_check(world: World) -> None:
    """A disclosure is accepted iff commitment_of(disclosed result, stored nonce) equals
    the stored commitment; otherwise it reverts "Mismatch result and commitment"."""
    check_commitments(world, budget().commitments)


def check_commitments(world: World, examples: int) -> None:
    task = world.d.task

    @seeded
    @settings(max_examples=examples)
    @given(case=disclosures())
    def check(case: tuple[bytes, bytes, bytes, bytes]) -> None:
        committed, nonce, stored, disclosed = case
        commitment = commitment_of(committed, nonce)
        accepted = commitment_of(disclosed, stored) == commitment
        assert accepted == (disclosed == committed and stored == nonce)
        with world.chain.isolation():
            task_id, nodes = _start_task(world, b"\x52" * 32)
            task.submit_commitment(nodes[0], task_id, 0, commitment, stored)
            for round_ in (1, 2):
                other = nonce_for(task_id, round_)
                task.submit_commitment(nodes[round_], task_id, round_, commitment_of(committed, other), other)
            info = task.get_task(task_id)
            assert info.commitments[0] == commitment and info.nonces[0] == stored
            if accepted:
                task.disclose(nodes[0], task_id, 0, disclosed)
                assert task.get_task(task_id).results[0] == disclosed
            else:
                with expect_revert("Mismatch result and commitment"):
                    task.disclose(nodes[0], task_id, 0, disclosed)

    check()


# ------------------------------------------------------------ selection


def test_selection(world: World) -> None:
    """createTask selects 3 distinct nodes that were AVAILABLE (never PAUSED, BUSY or
    QUIT ones), makes them BUSY, and getSelectedNode predicted them in the pending block."""
    check_selection(world, budget().selection)


def check_selection(world: World, examples: int) -> None:
    d = world.d
    nodes = list(world.nodes.values())

    @seeded
    @settings(max_examples=examples)
    @given(
        statuses=st.lists(st.sampled_from(("available", "paused", "busy", "quit")), min_size=8, max_size=8),
        task_hash=st.binary(min_size=32, max_size=32),
    )
    def check(statuses: list[str], task_hash: bytes) -> None:
        with world.chain.isolation():
            for node, status in zip(nodes, statuses):
                if d.node.status(node.address) == NodeStatus.QUIT and status != "quit":
                    d.node.join(node)
                elif d.node.status(node.address) != NodeStatus.QUIT and status == "quit":
                    d.node.quit(node)
            # Busy ones: a first task over exactly 3 would-be-busy nodes, every other
            # joined node paused meanwhile.
            busy = [n for n, s in zip(nodes, statuses) if s == "busy"][:3]
            others = [n for n, s in zip(nodes, statuses) if s != "quit" and n not in busy]
            if len(busy) == 3:
                for node in others:
                    d.node.pause(node)
                first = d.task.create_task(world.apps["app2"], b"\x01" * 32)
                assert set(first.selected_nodes) == {n.address for n in busy}
                for node in others:
                    d.node.resume(node)
            for node, status in zip(nodes, statuses):
                if status == "paused":
                    d.node.pause(node)
            before = {n.address: d.node.status(n.address) for n in nodes}
            available = {a for a, s in before.items() if s == NodeStatus.AVAILABLE}
            note(f"statuses before: { {world.name(a): s.name for a, s in before.items()} }")
            assert d.node.available_nodes() == len(available)
            if len(available) < 3:
                with expect_revert("Not enough nodes"):
                    d.task.create_task(world.apps["app1"], task_hash)
                return
            predicted = [str(world.chain.call(d.task.contract.functions.getSelectedNode(task_hash, ZERO_HASH, r), block="pending")) for r in range(3)]
            created = d.task.create_task(world.apps["app1"], task_hash)
            selected = list(created.selected_nodes)
            assert len(set(selected)) == 3, f"selected the same node twice: {selected}"
            assert set(selected) <= available, f"selected a node that was not AVAILABLE: {[world.name(n) for n in selected]}"
            assert predicted == selected, f"getSelectedNode predicted {predicted}, createTask picked {selected}"
            for address in selected:
                assert d.node.status(address) == NodeStatus.BUSY
                assert d.task.node_task(address) == created.task_id
            assert d.node.available_nodes() == len(available) - 3

    check()
