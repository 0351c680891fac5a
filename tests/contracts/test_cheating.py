"""Cheaters and similarity (PROTOCOL.md 3): slashing, the result node, "Task result illegal".

Amounts with f = 10 CNX and a 400 CNX stake. Disclosures go in the round order
(1, 2, 0), so the discloser positions d0, d1, d2 differ from the rounds.
"""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.protocol.constants import NodeStatus
from tests.contracts.helpers import EMPTY_TASK, FEE, HONEST, STAKE, RunningTask, assert_invariants, event_tuples, flip_bits, start_task

AVAILABLE, BUSY, QUIT = NodeStatus.AVAILABLE, NodeStatus.BUSY, NodeStatus.QUIT
DISCLOSURE_ORDER = (1, 2, 0)  # d0 = round 1, d1 = round 2, d2 = round 0
CHEAT = flip_bits(HONEST, 5)  # Hamming distance 5 in image 0: not similar under the threshold 5


@pytest.mark.parametrize("cheater", [0, 1, 2], ids=["d0-cheats", "d1-cheats", "d2-cheats"])
def test_one_cheater_is_slashed(contracts: Deployment, task_run: RunningTask, nodes: dict[str, LocalAccount], cheater: int) -> None:
    run = task_run
    results = [CHEAT if position == cheater else HONEST for position in range(3)]
    rounds = DISCLOSURE_ORDER
    for position, r in enumerate(rounds):
        run.commit(r, results[position])
    honest = [p for p in range(3) if p != cheater]
    result_round, other_round, cheat_round = rounds[honest[0]], rounds[honest[1]], rounds[cheater]
    name = {r: f"r{r}" for r in range(3)}
    watch = run.balances()

    receipts = [run.disclose(r, results[p]) for p, r in enumerate(rounds)]
    success = ("TaskSuccess", run.id, HONEST, run.nodes[result_round].address)
    if cheater == 2:  # d0 and d1 agree: success at d1, the cheater slashed at d2
        assert [event_tuples(contracts, rc) for rc in receipts] == [[], [success], []]
    else:  # d0 and d1 disagree: d2 decides
        assert [event_tuples(contracts, rc) for rc in receipts] == [[], [], [success]]
    # The cheater's fee back to the creator, its stake to the owner; the other honest node paid.
    watch.assert_changes(app=+FEE, task=-2 * FEE, node=-STAKE, owner=+STAKE, **{name[other_round]: FEE})
    assert contracts.node.status(run.nodes[cheat_round].address) == QUIT
    assert contracts.node.status(run.nodes[other_round].address) == AVAILABLE
    assert contracts.node.status(run.nodes[result_round].address) == BUSY
    info = run.info()
    assert (info.is_success, info.aborted, info.result_node, info.balance) == (True, False, run.nodes[result_round].address, FEE)
    assert contracts.task.total_success_tasks() == 1

    assert event_tuples(contracts, run.report_uploaded(result_round)) == []
    watch.assert_changes(app=+FEE, task=-3 * FEE, node=-STAKE, owner=+STAKE, **{name[other_round]: FEE, name[result_round]: FEE})
    assert run.info() == EMPTY_TASK
    assert run.node_tasks() == (0, 0, 0)
    assert (contracts.node.total_nodes(), contracts.node.available_nodes()) == (2, 2)
    assert (contracts.task.total_success_tasks(), contracts.task.total_aborted_tasks()) == (1, 0)
    assert_invariants(contracts, nodes, [run.id])


def test_three_different_results_abort_with_a_full_refund(contracts: Deployment, task_run: RunningTask, nodes: dict[str, LocalAccount]) -> None:
    run = task_run
    results = (HONEST, flip_bits(HONEST, 5, image=0), flip_bits(HONEST, 5, image=1))
    for position, r in enumerate(DISCLOSURE_ORDER):
        run.commit(r, results[position])
    watch = run.balances()
    receipts = [run.disclose(r, results[p]) for p, r in enumerate(DISCLOSURE_ORDER)]
    assert [event_tuples(contracts, rc) for rc in receipts] == [[], [], [("TaskAborted", run.id, "Task result illegal")]]
    watch.assert_changes(app=+3 * FEE, task=-3 * FEE)
    assert run.statuses() == (AVAILABLE,) * 3
    assert run.node_tasks() == (0, 0, 0)
    assert run.info() == EMPTY_TASK
    assert (contracts.task.total_success_tasks(), contracts.task.total_aborted_tasks()) == (0, 1)
    assert (contracts.node.total_nodes(), contracts.node.available_nodes()) == (3, 3)
    assert_invariants(contracts, nodes, [run.id])


ALL_BITS = bytes(b ^ 0xFF for b in HONEST)

# (d0's result, d1's result, similar?) -- similarity is per 8-byte image, distance < 5.
PAIRS: dict[str, tuple[bytes, bytes, bool]] = {
    "identical": (HONEST, HONEST, True),
    "4 bits in one image": (HONEST, flip_bits(HONEST, 4, image=1), True),
    "4 bits in every image": (HONEST, flip_bits(flip_bits(HONEST, 4, image=0), 4, image=1), True),
    "5 bits in one image": (HONEST, flip_bits(HONEST, 5, image=1), False),
    "64 bits": (HONEST, ALL_BITS, False),
    "different lengths": (HONEST, HONEST[:8], False),
    "length not a multiple of 8": (HONEST[:12], HONEST[:12], False),
}


@pytest.mark.parametrize("pair", list(PAIRS), ids=list(PAIRS))
def test_similarity_of_the_first_two_disclosures(contracts: Deployment, task_run: RunningTask, pair: str) -> None:
    first, second, similar = PAIRS[pair]
    run = task_run
    run.commit(0, first)
    run.commit(1, second)
    run.commit(2, first)
    watch = run.balances()
    run.disclose(0, first)
    events = event_tuples(contracts, run.disclose(1, second))
    if similar:  # d1 paid, success with d0's result exactly
        assert events == [("TaskSuccess", run.id, first, run.nodes[0].address)]
        watch.assert_changes(r1=FEE, task=-FEE)
        assert run.statuses() == (BUSY, AVAILABLE, BUSY)
    else:
        assert events == []
        watch.assert_changes()
        assert run.statuses() == (BUSY, BUSY, BUSY)
    assert run.info().is_success == similar


def test_identical_results_of_a_length_not_multiple_of_8_are_illegal(contracts: Deployment, task_run: RunningTask) -> None:
    """H-net's similarity needs whole 8-byte images, so even 3 equal 12-byte results fail."""
    run = task_run
    odd = HONEST[:12]
    for r in range(3):
        run.commit(r, odd)
    watch = run.balances()
    run.disclose(0, odd)
    run.disclose(1, odd)
    assert event_tuples(contracts, run.disclose(2, odd)) == [("TaskAborted", run.id, "Task result illegal")]
    watch.assert_changes(app=+3 * FEE, task=-3 * FEE)


def test_distance_threshold_is_the_owners(contracts: Deployment, app: LocalAccount, nodes: dict[str, LocalAccount]) -> None:
    contracts.task.update_distance_threshold(contracts.owner, 6)
    run = start_task(contracts, app, nodes)
    five_off = flip_bits(HONEST, 5)
    six_off = flip_bits(HONEST, 6)
    run.commit(0, HONEST)
    run.commit(1, five_off)
    run.commit(2, six_off)
    watch = run.balances()
    run.disclose(0, HONEST)
    assert event_tuples(contracts, run.disclose(1, five_off)) == [("TaskSuccess", run.id, HONEST, run.nodes[0].address)]
    run.disclose(2, six_off)  # distance 6 from d0: not similar under 6, slashed
    watch.assert_changes(app=+FEE, r1=FEE, task=-2 * FEE, node=-STAKE, owner=+STAKE)
    assert run.statuses() == (BUSY, AVAILABLE, QUIT)


# d1 has bits 0-3 of image 0 flipped; d2 either bits 4-7 (4 from d0, 8 from d1)
# or bits 0-7 (8 from d0, 4 from d1).
D1 = flip_bits(HONEST, 4)
NEAR_D0_ONLY = flip_bits(flip_bits(HONEST, 8), 4)
NEAR_D1_ONLY = flip_bits(HONEST, 8)


@pytest.mark.parametrize(("d2", "paid"), [(NEAR_D0_ONLY, True), (NEAR_D1_ONLY, False)], ids=["near-d0-only", "near-d1-only"])
def test_after_success_the_third_discloser_is_compared_with_d0_only(contracts: Deployment, task_run: RunningTask, d2: bytes, paid: bool) -> None:
    run = task_run
    results = (HONEST, D1, d2)
    for r, result in zip(DISCLOSURE_ORDER, results):
        run.commit(r, result)
    watch = run.balances()
    for r, result in zip(DISCLOSURE_ORDER, results):
        run.disclose(r, result)
    # d1 = round 2 paid at success; d2 = round 0 paid or slashed.
    if paid:
        watch.assert_changes(r2=FEE, r0=FEE, task=-2 * FEE)
        assert contracts.node.status(run.nodes[0].address) == AVAILABLE
    else:
        watch.assert_changes(r2=FEE, app=+FEE, task=-2 * FEE, node=-STAKE, owner=+STAKE)
        assert contracts.node.status(run.nodes[0].address) == QUIT
    assert run.info().result_node == run.nodes[1].address
