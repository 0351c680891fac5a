"""The sandbox's node loop: each node acts on its own news, whatever the others are doing
(issue 13, item 11: with 30 nodes, nodes waited for each other's transactions)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import cast

from pathlib import Path

from hydrogen_harness.fakes.behaviour import Behaviour
from hydrogen_harness.fakes.node import SimulatedNode
from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.protocol.actions import Action, ActionKind
from hydrogen_harness.protocol.events import TaskCreated, TaskEvent
from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.sandbox.core import Sandbox, SandboxOptions
from hydrogen_harness.sandbox.nodes import NodeLoop
from tests.sandbox.app_load import ARGS, app_for, args_json

WAIT = 5.0  # seconds: far more than a node takes to react when nothing holds it back
RELAY_DELAY = 8.0  # seconds one node's Relay request is held: longer than a whole task takes


def test_a_task_runs_through_while_a_node_of_another_task_waits_on_the_relay(tmp_path: Path) -> None:
    """Six nodes, two tasks: a node of task 1 waits on a slow Relay answer; task 2's nodes
    (the other three) run task 2 through meanwhile, as separate node processes would."""
    with Sandbox(SandboxOptions.for_tests(tmp_path, ["honest"] * 6), log=lambda _: None) as sandbox:
        wallet = sandbox.new_wallet(cnx=100 * CNX)
        held = sandbox.faults.fail_next(1, "GET", "/v1/inference_tasks/1", delay=RELAY_DELAY)
        with app_for(sandbox.info, wallet.key, timeout=RELAY_DELAY * 3) as app:
            first = args_json({**ARGS, "prompt": "first"})
            task1, _ = app.create_task(first)
            deadline = time.monotonic() + WAIT
            while held.calls == 0 and time.monotonic() < deadline:  # a node of task 1 asked the Relay
                time.sleep(0.01)
            assert held.calls == 1
            app.upload_args(task1, first)
            second = args_json({**ARGS, "prompt": "second"})
            task2, block2 = app.create_task(second)
            app.upload_args(task2, second)
            assert app.wait(task2, block2)["event"] == "TaskSuccess"
            answered = [e.what for e in sandbox.timeline if "injected fault" in e.what]
            assert answered == [], "task 2's nodes waited for the node of task 1 held by the Relay"
            assert app.wait(task1, 0)["event"] == "TaskSuccess"  # and task 1 completes once it is answered


class ScriptedChain:
    """A `ChainSource` whose blocks the test appends."""

    def __init__(self) -> None:
        self.blocks: list[list[TaskEvent]] = [[]]
        self.lock = threading.Lock()

    def head(self) -> int:
        with self.lock:
            return len(self.blocks) - 1

    def events(self, from_block: int, to_block: int) -> list[TaskEvent]:
        with self.lock:
            return [e for block in self.blocks[from_block : to_block + 1] for e in block]

    def block_hash(self, number: int) -> bytes | None:
        return None  # keeps no hashes (the nodes do not ask)

    def mine(self, *events: TaskEvent) -> None:
        with self.lock:
            self.blocks.append(list(events))


def created(task_id: int, node: str, block: int) -> TaskCreated:
    return TaskCreated(block, 0, f"0x{task_id:064x}", task_id, "0xapp", node, b"\0" * 32, b"\0" * 32, 0)


class ScriptedNode:
    """Acts once per task it is selected for; the action waits on `gate` (a transaction
    waiting for its block, say) when one is given."""

    def __init__(self, name: str, gate: threading.Event | None = None) -> None:
        self.name = self.address = name
        self.behaviour = Behaviour()
        self.crashed = False
        self.has_requests = False
        self.actions: list[Action] = []
        self.todo: list[int] = []
        self.gate = gate
        self.started = threading.Event()
        self.acted = threading.Event()

    def observe(self, events: Iterable[TaskEvent]) -> None:
        self.todo += [e.task_id for e in events if isinstance(e, TaskCreated) and e.selected_node == self.address]

    def step(self) -> bool:
        if not self.todo:
            return False
        task_id = self.todo.pop(0)
        self.started.set()
        if self.gate is not None:
            self.gate.wait(WAIT * 3)
        self.actions.append(Action(task_id, "acted", ActionKind.TRANSACTION))
        self.acted.set()
        return True

    def active(self) -> list[int]:
        return list(self.todo)

    def reset(self) -> None:
        self.todo.clear()


def test_a_node_acts_on_its_task_while_another_waits_for_its_transaction() -> None:
    chain = ScriptedChain()
    gate = threading.Event()
    slow, quick = ScriptedNode("node1", gate), ScriptedNode("node2")
    nodes = cast(list[SimulatedNode], [slow, quick])
    loop = NodeLoop(cast(Deployment, None), nodes, source=chain, start_block=1, names={}, log=lambda _: None, interval=0.05)
    loop.start()
    try:
        chain.mine(created(1, "node1", 1))
        loop.wake()
        # node1's action has begun and is held (its transaction waits for a block) ...
        assert slow.started.wait(WAIT) and not slow.acted.is_set()
        # ... when a task for node2 is mined: node2 acts at once, not after node1.
        chain.mine(created(2, "node2", 2))
        loop.wake()
        assert quick.acted.wait(WAIT), "node2 waited for node1's action to end"
        assert not slow.acted.is_set()
    finally:
        gate.set()
        assert loop.stop(WAIT)
    assert [(a.task_id, a.what) for a in slow.actions] == [(1, "acted")]
    assert [(a.task_id, a.what) for a in quick.actions] == [(2, "acted")]


def test_held_waits_for_the_action_under_way() -> None:
    chain = ScriptedChain()
    gate = threading.Event()
    node = ScriptedNode("node1", gate)
    loop = NodeLoop(cast(Deployment, None), cast(list[SimulatedNode], [node]), source=chain, start_block=1, names={}, log=lambda _: None)
    loop.start()
    try:
        chain.mine(created(1, "node1", 1))
        loop.wake()
        assert node.started.wait(WAIT)
        inside: list[list[tuple[int | None, str]]] = []

        def hold() -> None:
            with loop.held():
                inside.append([(a.task_id, a.what) for a in node.actions])

        holder = threading.Thread(target=hold)
        holder.start()
        holder.join(0.2)
        assert holder.is_alive(), "held() did not wait for the action under way"
        gate.set()
        holder.join(WAIT)
        assert inside == [[(1, "acted")]]  # entered once the action had ended, not in its middle
    finally:
        gate.set()
        assert loop.stop(WAIT)
