"""The settlement state machine: random sequences of protocol actions against the
contracts, with the ghost ledger (model.py) predicting every balance, status, task
and counter after every step, and the conservation laws of PROTOCOL.md 3 checked on
the chain alone.

Actors: app1..app3 (varied balances and allowances, see world.py), node1..nodeN
(N = 3..8 per run, drawn by the initialize step), the owner. Every step notes what
it did in protocol words ("app1 createTask -> task 1 [node3,node1,node5]"), so a
failure prints its shrunk sequence readably. Rules whose call the protocol says
must revert assert the exact revert string (expect_revert); which string is the
model's prediction.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hypothesis import event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from hydrogen_harness.protocol.events import TaskAborted, TaskCreated, TaskResultCommitmentsReady, TaskSuccess
from hydrogen_harness.plugin import expect_revert
from hydrogen_harness.protocol.constants import CNX, STAKE_AMOUNT, ZERO_HASH, NodeStatus, TaskInfo
from hydrogen_harness.protocol.reverts import RevertError
from tests.properties.model import BUSY_STATES, INFINITE, Event, Ledger, ModelError, Revert, TaskState
from tests.properties.profiles import LONG_RUN, STATS, RunStats, long_runs_required, seeded
from tests.properties.results import KINDS, node_result, nonce_for, words
from tests.properties.world import Reading, World

ZERO_ADDRESS = "0x" + "00" * 20
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
APPROVAL_TOPIC = keccak(text="Approval(address,address,uint256)")
ADVANCES = (1, 10, 60, 300, 899, 900, 901, 1800)
NEXT_DEADLINE = 0  # time_passes: to the earliest live task's deadline
SWEEP_EVERY = 5
# What a node does with its round: one of results.KINDS (what it commits), "error" (it
# reports a task error instead), or "crash" (it commits the true result, then never
# acts on that task again: no disclosure, no upload report, so unless the other two
# settle the task it ends by a cancel after its deadline).
BEHAVIOURS = (*KINDS, "crash", "error")
# Each node of a run has a behaviour (DESIGN.md: behaviours are data), which the honest
# network steps follow; honest most often. Shrinks towards all honest.
NODE_BEHAVIOURS = ("honest",) * 6 + BEHAVIOURS[1:]
TIMEOUTS = (60, 300, 900, 3600)  # owner_updates(setting="timeout") picks one
LEGAL_ACTIONS: dict[NodeStatus, tuple[str, ...]] = {
    NodeStatus.QUIT: ("join",),
    NodeStatus.AVAILABLE: ("quit", "pause"),
    NodeStatus.BUSY: ("quit", "pause"),
    NodeStatus.PAUSED: ("resume", "quit"),
    NodeStatus.PENDING_PAUSE: (),
    NodeStatus.PENDING_QUIT: (),
}
FORBIDDEN = (  # rarer occasions first: Hypothesis draws the first ones more often
    "report upload twice",
    "commit on aborted task",
    "quit while pending",
    "cancel at deadline",
    "disclose tampered",
    "disclose twice",
    "disclose early",
    "commit reused nonce",
    "report upload not result node",
    "createTask without nodes",
    "pause while paused or pending",
    "resume while not paused",
    "join twice",
    "commit twice",
    "commit zero nonce",
    "disclose empty",
    "commit unknown task",
    "commit round 3",
    "commit by wrong node",
    "cancel by outsider",
    "cancel before deadline",
    "fee set by stranger",
)
FEES = (1 * CNX, 3 * CNX, 10 * CNX, 25 * CNX, 7 * CNX + 3)

pick = st.integers(0, 2**16)  # an index into the candidates of a rule; shrinks to the first


def _topic_address(topic: Any) -> str:
    return to_checksum_address(bytes(topic)[-20:])


class SettlementMachine(RuleBasedStateMachine):
    def __init__(self, world: World, stats: RunStats = STATS) -> None:
        super().__init__()
        self.w = world
        self.stats = stats  # where the run's figures go (the session report's: STATS)
        self.d = world.d
        # Undone in teardown: a state machine's run spans calls, so no `with` block fits.
        self._isolation = world.chain.isolation()
        self._isolation.__enter__()
        self._started = time.perf_counter()
        base = world.baseline
        self.model = Ledger(
            owner=world.owner.address,
            token=self.d.token.address,
            node_contract=self.d.node.address,
            task_contract=self.d.task.address,
            balances=base.balances,
            allowances=base.allowances,
            nodes=world.node_addresses,
            fee=base.fee,
            threshold=base.threshold,
            timeout=base.timeout,
            supply=base.supply,
        )
        self.model.status.update(base.status)
        self.nodes: list[str] = []  # this run's nodes, by address
        self.accounts: dict[str, LocalAccount] = {a.address: a for a in [*world.apps.values(), *world.nodes.values(), world.owner]}
        self.apps = [a.address for a in world.apps.values()]
        self.truth: dict[int, bytes] = {}
        self.secret: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self.crashed: set[tuple[int, int]] = set()  # (task, round) whose node crashed after committing
        self.behaviour: dict[str, str] = {}  # node -> its behaviour in this run (join_nodes)
        self.bad_args: set[int] = set()  # tasks whose args the nodes cannot run
        self.touched: set[int] = set()
        self.check_allowances = True
        self._checks = 0
        # CNX balances as the token's Transfer logs say (checked against balanceOf in sweeps).
        self.cnx: dict[str, int] = dict(base.balances)
        # Chain-side escrow flows per task, from the token's Transfer logs.
        self.deposited: dict[int, int] = {}
        self.paid_out: dict[int, int] = {}

    def teardown(self) -> None:
        # Hypothesis calls teardown from a `finally`: an exception in flight means the run
        # failed (its error is the one to report) or was dropped as invalid.
        in_flight = sys.exc_info()[1]
        try:
            if in_flight is None and self._checks and self._checks % SWEEP_EVERY != 1:
                self._verify(sweep=True)  # a last complete check
        finally:
            self.stats.seconds += time.perf_counter() - self._started
            # Invariants first run after the initialize step, then after every step.
            if in_flight is None and self._checks:
                self.stats.runs += 1
                self.stats.steps += self._checks
                self.stats.full_runs += self._checks >= settings.default.stateful_step_count
                self.stats.long_runs += self._checks >= LONG_RUN
                self.stats.show_progress()
            elif isinstance(in_flight, AssertionError | RevertError):
                self.stats.failed_runs += 1
            else:
                self.stats.dropped_runs += 1
            self._isolation.__exit__(None, None, None)

    # ------------------------------------------------------------ words

    def _n(self, address: str) -> str:
        return self.w.name(address)

    def _say(self, text: str) -> None:
        note(text)

    def _task_words(self, task_id: int, round_: int) -> str:
        return f"task {task_id} round {round_}"

    # ------------------------------------------------------------ acting

    def _act(
        self,
        words_: str,
        predict: Callable[[], list[Event]],
        send: Callable[[], Any],
        task_id: int | None = None,
    ) -> Any:
        """Ask the model, then the chain; the chain must do exactly what the model says."""
        if task_id is not None:
            self.touched.add(task_id)
        self.model.effects.clear()
        try:
            expected = predict() or []
        except Revert as revert:
            self._say(f"{words_} -> reverts {revert.reason!r}")
            event(f"revert: {revert.reason}")
            self.stats.outcomes[f"revert {revert.reason!r}"] += 1
            try:
                with expect_revert(revert.reason):
                    send()
            except AssertionError as exc:
                raise AssertionError(f"{words_}: {exc}") from None
            return None
        self._say(f"{words_}{self._describe(expected)}")
        try:
            receipt = send()
        except RevertError as exc:
            raise AssertionError(f"{words_}: the model expected success, the chain reverted {exc.reason!r}") from None
        self._check_events(receipt, expected)
        self._track_flows(receipt, task_id)
        for e in expected:
            label = e.name if e.name != "TaskAborted" else f"TaskAborted {e.detail[0]!r}"
            if e.name != "TaskCreated":
                event(label)
                self.stats.outcomes[label] += 1
        return receipt

    def _describe(self, events: list[Event]) -> str:
        parts = []
        for what, who in self.model.effects:
            if what == "branch":
                self.stats.outcomes[f"settled: {who}"] += 1
                continue
            parts.append(f"{what} {who if what == 'delete task' else self._n(who)}")
            if what in ("slash", "free unpaid"):
                self.stats.outcomes[what] += 1
        for e in events:
            if e.name == "TaskSuccess":
                parts.append(f"TaskSuccess(result node {self._n(str(e.detail[1]))})")
            elif e.name == "TaskAborted":
                parts.append(f"TaskAborted({e.detail[0]!r})")
            elif e.name == "TaskResultCommitmentsReady":
                parts.append("CommitmentsReady")
        return f" -> {', '.join(parts)}" if parts else ""

    def _check_events(self, receipt: Any, expected: list[Event]) -> None:
        actual: list[Event] = []
        for e in self.d.task.events(receipt):
            if isinstance(e, TaskCreated):
                actual.append(Event("TaskCreated", e.task_id, (e.creator, e.selected_node, e.task_hash, e.data_hash, e.round)))
            elif isinstance(e, TaskResultCommitmentsReady):
                actual.append(Event("TaskResultCommitmentsReady", e.task_id))
            elif isinstance(e, TaskSuccess):
                actual.append(Event("TaskSuccess", e.task_id, (e.result, e.result_node)))
            elif isinstance(e, TaskAborted):
                actual.append(Event("TaskAborted", e.task_id, (e.reason,)))
        assert actual == expected, f"Task events differ:\n  chain: {actual}\n  model: {expected}"

    def _track_flows(self, receipt: Any, task_id: int | None) -> None:
        """Follow the token's Transfer logs: every balance, and each task's escrow flows."""
        task = self.d.task.address
        for log in receipt["logs"]:
            if log["address"] != self.d.token.address or bytes(log["topics"][0]) != TRANSFER_TOPIC:
                continue
            sender, to = _topic_address(log["topics"][1]), _topic_address(log["topics"][2])
            amount = int.from_bytes(bytes(log["data"]), "big")
            assert sender in self.cnx and to in self.cnx, f"CNX moved outside the known holders: {sender} -> {to}"
            self.cnx[sender] -= amount
            self.cnx[to] += amount
            if task_id is None:
                continue
            if to == task:
                self.deposited[task_id] = self.deposited.get(task_id, 0) + amount
            if sender == task:
                self.paid_out[task_id] = self.paid_out.get(task_id, 0) + amount

    def _send(self, who: str, fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
        account = self.accounts[who]
        return lambda: fn(account, *args)

    # ------------------------------------------------------------ candidates

    def _live(self) -> list[TaskState]:
        return [t for t in self.model.tasks.values() if t.exists]

    def _unset(self, task: TaskState) -> list[int]:
        """Rounds of `task` whose node has not committed (nor crashed)."""
        return [r for r in range(3) if task.commitments[r] == ZERO_HASH and (task.id, r) not in self.crashed]

    def _unset_rounds(self, aborted: bool | None = False) -> list[tuple[int, int]]:
        return [(t.id, r) for t in self._live() if aborted is None or t.aborted == aborted for r in self._unset(t)]

    def _disclosable(self) -> list[tuple[int, int]]:
        """Rounds whose node can disclose now (a crashed node never does)."""
        return [
            (t.id, r)
            for t in self._live()
            if t.commitments_ready and not t.aborted
            for r in range(3)
            if t.real_commitment(r) and r not in t.disclosed and (t.id, r) not in self.crashed
        ]

    def _undisclosed_real(self, ready: bool) -> list[tuple[int, int]]:
        return [
            (t.id, r)
            for t in self._live()
            if t.commitments_ready == ready
            for r in range(3)
            if t.real_commitment(r) and r not in t.disclosed
        ]

    def _result_rounds(self, reported: bool = False) -> list[tuple[int, int]]:
        """Result nodes that have not reported their upload (or, with `reported`, also
        those that have, whose task is still live: they may report again)."""
        return [
            (t.id, t.round_of(t.result_node))
            for t in self._live()
            if t.result_node != ZERO_ADDRESS
            and (reported or not t.upload_reported)
            and (t.id, t.round_of(t.result_node)) not in self.crashed
        ]

    def _expired(self) -> list[int]:
        now = self.w.chain.now()
        return [t.id for t in self._live() if now + 1 > t.timeout]

    @staticmethod
    def _choose(candidates: list[Any], index: int) -> Any:
        return candidates[index % len(candidates)]

    # ------------------------------------------------------------ set-up

    @initialize(count=st.integers(3, 8), behaviours=st.lists(st.sampled_from(NODE_BEHAVIOURS), min_size=8, max_size=8))
    def join_nodes(self, count: int, behaviours: list[str]) -> None:
        """This run's nodes: the first `count` of 8 (node1..node3 joined already), each
        with its behaviour."""
        self.nodes = self.w.node_addresses[:count]
        self.behaviour = dict(zip(self.nodes, behaviours))
        self._say(f"{count} nodes: {', '.join(f'{self._n(n)} ({self.behaviour[n]})' for n in self.nodes)}")
        for node in self.nodes:
            if self.model.status[node] == NodeStatus.QUIT:
                self._act(f"{self._n(node)} join", lambda n=node: self.model.join(n), self._send(node, self.d.node.join))

    # ------------------------------------------------------------ applications

    @precondition(lambda self: self.model.available_nodes >= 3)
    @rule(
        app=st.sampled_from(("app1", "app2", "app3")),
        truth=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=10),
        salt=st.integers(0, 2**32),
        args=st.sampled_from(("valid", "valid", "valid", "invalid")),
    )
    def create_task(self, app: str, truth: list[int], salt: int, args: str) -> None:
        """An app creates a task whose true result is `truth` (8-byte words). With
        invalid args, the nodes that follow the network report a task error instead of
        committing (PROTOCOL.md 5), so two error reports abort it."""
        task_id = self._create_task(app, truth, salt)
        if task_id is not None and args == "invalid":
            self.bad_args.add(task_id)
            self._say(f"task {task_id}'s args are invalid: its nodes will report errors")

    def _create_task(self, app: str, truth: list[int], salt: int) -> int | None:
        account = self.w.apps[app]
        task_hash = salt.to_bytes(32, "big")
        self.check_allowances = True
        try:
            self.model.check_create(account.address)
        except Revert as revert:
            self._say(f"{app} createTask -> reverts {revert.reason!r}")
            self.stats.outcomes[f"revert {revert.reason!r}"] += 1
            try:
                with expect_revert(revert.reason):
                    self.d.task.create_task(account, task_hash)
            except AssertionError as exc:
                raise AssertionError(f"{app} createTask: {exc}") from None
            return None
        try:
            created = self.d.task.create_task(account, task_hash)
        except RevertError as exc:
            raise AssertionError(f"{app} createTask: the model expected success, the chain reverted {exc.reason!r}") from None
        selected = created.selected_nodes
        timestamp = self.w.chain.now()
        try:
            expected = self.model.create_task(account.address, task_hash, ZERO_HASH, selected, timestamp)
        except ModelError as exc:
            raise AssertionError(f"{app} createTask -> task {created.task_id}: illegal selection: {exc}") from exc
        self._say(f"{app} createTask -> task {created.task_id} [{','.join(self._n(n) for n in selected)}] (fee {self.model.fee / CNX:g} CNX)")
        assert created.task_id == self.model.total_tasks, f"createTask gave id {created.task_id}, expected {self.model.total_tasks}"
        self._check_events(created.receipt, expected)
        self._check_create_logs(created.receipt, account.address)
        self._track_flows(created.receipt, created.task_id)
        self.truth[created.task_id] = words(truth)
        self.touched.add(created.task_id)
        self.stats.outcomes["task created"] += 1
        return created.task_id

    def _check_create_logs(self, receipt: Any, app: str) -> None:
        """2.3: Approval (absent under an infinite allowance), Transfer, 3 TaskCreated."""
        topics = [bytes(log["topics"][0]) for log in receipt["logs"]]
        infinite = self.model.allowances.get((app, self.d.task.address)) == INFINITE
        head = [TRANSFER_TOPIC] if infinite else [APPROVAL_TOPIC, TRANSFER_TOPIC]
        created_topic = self.d.task.codec.topics["TaskCreated"]
        assert topics == head + [created_topic] * 3, f"createTask logs: {[t.hex()[:8] for t in topics]}"

    # ------------------------------------------------------------ nodes: commit and disclose

    def _commit(self, task_id: int, round_: int, kind: str) -> None:
        task = self.model.tasks[task_id]
        node = task.selected[round_]
        result = node_result(kind, self.truth[task_id], task_id, round_, self.model.threshold)
        nonce = nonce_for(task_id, round_)
        commitment = keccak(result + nonce)
        receipt = self._act(
            f"{self._n(node)} commit {kind} on {self._task_words(task_id, round_)}",
            lambda: self.model.commit(node, task_id, round_, commitment, nonce),
            self._send(node, self.d.task.submit_commitment, task_id, round_, commitment, nonce),
            task_id,
        )
        if receipt is not None:
            self.secret[(task_id, round_)] = (result, nonce)

    @precondition(lambda self: self._unset_rounds(aborted=None))
    @rule(behaviour=st.sampled_from(BEHAVIOURS), which=pick)
    def node_works(self, behaviour: str, which: int) -> None:
        """A selected node that has not committed yet commits its result, `behaviour`
        deciding which (results.py), or reports a task error (also on an aborted task:
        that is how the third node of an error abort gets paid)."""
        if behaviour != "error":
            candidates = self._unset_rounds()
            if not candidates:
                self._say(f"no node can commit ({behaviour}): every task waiting for one is aborted")
                return
            self._work(*self._choose(candidates, which), behaviour)
            return
        self._report_error(*self._choose(self._unset_rounds(aborted=None), which))

    def _work(self, task_id: int, round_: int, behaviour: str) -> None:
        if behaviour == "error":
            self._report_error(task_id, round_)
            return
        self._commit(task_id, round_, "honest" if behaviour == "crash" else behaviour)
        if behaviour == "crash":
            self.crashed.add((task_id, round_))
            self._say(f"{self._n(self.model.tasks[task_id].selected[round_])} crashes after committing")

    def _report_error(self, task_id: int, round_: int) -> None:
        node = self.model.tasks[task_id].selected[round_]
        self._act(
            f"{self._n(node)} reportTaskError on {self._task_words(task_id, round_)}",
            lambda: self.model.report_error(node, task_id, round_),
            self._send(node, self.d.task.report_error, task_id, round_),
            task_id,
        )

    def _disclose(self, task_id: int, round_: int, result: bytes | None = None, how: str = "") -> None:
        node = self.model.tasks[task_id].selected[round_]
        if result is None:
            result = self.secret[(task_id, round_)][0]
        self._act(
            f"{self._n(node)} disclose{how} on {self._task_words(task_id, round_)}",
            lambda: self.model.disclose(node, task_id, round_, result),
            self._send(node, self.d.task.disclose, task_id, round_, result),
            task_id,
        )

    def _moves(self, task: TaskState) -> list[tuple[str, int]]:
        """What honest, live nodes (and the app) can do next on `task` (PROTOCOL.md 1, 7)."""
        moves: list[tuple[str, int]] = [("error" if task.aborted else "commit", r) for r in self._unset(task)]
        moves += [("disclose", r) for i, r in self._disclosable() if i == task.id]
        moves += [("report", r) for i, r in self._result_rounds() if i == task.id]
        if not moves and self.w.chain.now() + 1 > task.timeout:
            moves.append(("cancel", 0))  # stuck past its deadline: its creator cancels it
        return moves

    def _movable(self) -> list[TaskState]:
        return [t for t in self._live() if self._moves(t)]

    @precondition(lambda self: self._movable())
    @rule(which=pick)
    def network_step(self, which: int) -> None:
        """One task moves on as the network would move it: one of its nodes that can
        act does -- commits as its behaviour says (reports an error if the task's args
        are invalid, or if the task is aborted), discloses, or, as the result node,
        reports its upload -- or, if no node will act and its deadline has passed, its
        creator cancels it. Other rules add one-off deviations (cancel_expired cancels
        expired tasks that could still move on)."""
        movable = self._movable()
        task = self._choose(movable, which)
        move, round_ = self._choose(self._moves(task), which // len(movable))
        if move == "commit":
            node = task.selected[round_]
            self._work(task.id, round_, "error" if task.id in self.bad_args else self.behaviour.get(node, "honest"))
        elif move == "error":
            self._report_error(task.id, round_)
        elif move == "disclose":
            self._disclose(task.id, round_)
        elif move == "report":
            self._report_uploaded(task.id, round_)
        else:
            self._cancel(task.id, task.creator, self.w.chain.now() + 1)

    @precondition(lambda self: self._disclosable())
    @rule(which=pick)
    def node_discloses(self, which: int) -> None:
        """A node discloses the result it committed, once all 3 commitments are in."""
        self._disclose(*self._choose(self._disclosable(), which))

    @precondition(lambda self: self._result_rounds(reported=True))
    @rule(which=pick)
    def result_node_reports_upload(self, which: int) -> None:
        """The result node reports its images uploaded and is paid; one that reported
        already retries (H-net paid it twice; deviation 4 says it must revert)."""
        task_id, round_ = self._choose(self._result_rounds(reported=True), which)
        again = " (again)" if self.model.tasks[task_id].upload_reported else ""
        self._report_uploaded(task_id, round_, again)

    def _report_uploaded(self, task_id: int, round_: int, how: str = "") -> None:
        node = self.model.tasks[task_id].selected[round_]
        self._act(
            f"{self._n(node)} reportResultsUploaded{how} on {self._task_words(task_id, round_)}",
            lambda: self.model.report_uploaded(node, task_id, round_),
            self._send(node, self.d.task.report_uploaded, task_id, round_),
            task_id,
        )

    # ------------------------------------------------------------ time and cancellation

    @precondition(lambda self: self._live())
    @rule(seconds=st.sampled_from((NEXT_DEADLINE, *ADVANCES)))
    def time_passes(self, seconds: int) -> None:
        """The clock moves on by one of ADVANCES, or (NEXT_DEADLINE) just far enough
        for the earliest live task to be cancellable: a task that expires while some of
        its nodes are settled and working elsewhere is what deviation 2 is about."""
        if seconds == NEXT_DEADLINE:
            now = self.w.chain.now()
            seconds = max(1, min(t.timeout for t in self._live()) - now)
        now = self.w.chain.advance(seconds)
        self._say(f"time passes {seconds} s (now {now})")

    def _cancel(self, task_id: int, who: str, timestamp: int, how: str = "") -> None:
        task = self.model.live(task_id)
        if task is not None and timestamp > task.timeout and any(self.model.node_task.get(n, task_id) != task_id for n in task.selected):
            self.stats.outcomes["cancel while a selected node works on another task (deviation 2)"] += 1
        self._act(
            f"{self._n(who)} cancelTask {task_id}{how}",
            lambda: self.model.cancel(who, task_id, timestamp),
            self._send(who, self.d.task.cancel, task_id),
            task_id,
        )

    @precondition(lambda self: self._expired())
    @rule(which=pick, by=st.integers(0, 3))
    def cancel_expired(self, which: int, by: int) -> None:
        """The creator (by=0) or a selected node (by=1..3) cancels a task past its deadline."""
        task = self.model.tasks[self._choose(self._expired(), which)]
        who = task.creator if by == 0 else task.selected[by - 1]
        self._cancel(task.id, who, self.w.chain.now() + 1)

    # ------------------------------------------------------------ node registry and owner

    # Like every rule but create_task, node_admin needs a task in flight (or too few
    # AVAILABLE nodes for one): when Hypothesis's swarm testing disables create_task,
    # the run is dropped at once instead of spending its steps joining and quitting.
    @precondition(lambda self: self._live() or self.model.available_nodes < 3)
    @rule(which=pick, choice=st.integers(0, 1))
    def node_admin(self, which: int, choice: int) -> None:
        """A node does something its status allows: join (QUIT), quit or pause
        (AVAILABLE, BUSY), resume or quit (PAUSED). PENDING_* nodes can do nothing."""
        node = self._choose(self.nodes, which)
        status = self.model.status[node]
        legal = LEGAL_ACTIONS[status]
        if not legal:
            self._say(f"{self._n(node)} is {status.name}: it waits")
            return
        action = legal[choice % len(legal)]
        self.check_allowances = self.check_allowances or action == "join"
        self._act(
            f"{self._n(node)} {action} (was {status.name})",
            lambda: getattr(self.model, action)(node),
            self._send(node, getattr(self.d.node, action)),
        )

    # Owner changes and forbidden calls matter while tasks are in flight (a fee change
    # mid-task is deviation 3).
    @precondition(lambda self: self._live())
    @rule(setting=st.sampled_from(("fee", "threshold", "timeout")), value=st.integers(0, 11))
    def owner_updates(self, setting: str, value: int) -> None:
        """The owner changes the fee per node (FEES[value % 5]), the distance threshold
        (value + 1) or the timeout of new tasks (TIMEOUTS[value % 4]) while tasks are in
        flight."""
        who = self.w.owner.address
        if setting == "timeout":
            seconds = TIMEOUTS[value % len(TIMEOUTS)]
            self._act(
                f"owner updateTimeout({seconds} s)",
                lambda: self.model.set_timeout(who, seconds),
                self._send(who, self.d.task.update_timeout, seconds),
            )
        elif setting == "fee":
            fee = FEES[value % len(FEES)]
            self._act(
                f"owner updateTaskFeePerNode({fee / CNX:g} CNX)",
                lambda: self.model.set_fee(who, fee),
                self._send(who, self.d.task.update_fee_per_node, fee),
            )
        else:
            self._act(
                f"owner updateDistanceThreshold({value + 1})",
                lambda: self.model.set_threshold(who, value + 1),
                self._send(who, self.d.task.update_distance_threshold, value + 1),
            )

    # ------------------------------------------------------------ calls the protocol forbids

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def try_forbidden_call(self, data: st.DataObject) -> None:
        """A call that must revert, with the revert string the model predicts, drawn
        among those the state offers an occasion for (FORBIDDEN names them)."""
        occasions = {call: found for call in FORBIDDEN if (found := self._forbidden_candidates(call))}
        call = data.draw(st.sampled_from(sorted(occasions, key=FORBIDDEN.index)), label="call")
        spot = data.draw(st.sampled_from(occasions[call]), label="on")
        self.stats.outcomes[f"forbidden: {call}"] += 1
        getattr(self, "_forbid_" + call.replace(" ", "_"))(spot)

    def _forbidden_candidates(self, call: str) -> list[Any]:
        live = self._live()
        nodes = self.nodes
        m = self.model
        now = self.w.chain.now()
        if call == "cancel before deadline":
            return [t.id for t in live if now + 1 <= t.timeout]
        if call == "cancel at deadline":
            return [t.id for t in live if now < t.timeout]
        if call in ("cancel by outsider", "commit round 3", "commit by wrong node"):
            return [t.id for t in live]
        if call == "commit unknown task":
            return [t.id for t in m.tasks.values() if not t.exists] + [m.total_tasks + 1]
        if call == "commit on aborted task":
            return self._unset_rounds(aborted=True)
        if call in ("commit zero nonce", "commit reused nonce"):
            return [(i, r) for i, r in self._unset_rounds() if call == "commit zero nonce" or any(n != ZERO_HASH for n in m.tasks[i].nonces)]
        if call == "commit twice":
            return [(t.id, r) for t in live for r in range(3) if t.commitments[r] != ZERO_HASH]
        if call in ("disclose tampered", "disclose empty"):
            return self._undisclosed_real(ready=True)
        if call == "disclose early":
            return self._undisclosed_real(ready=False)
        if call == "disclose twice":
            return [(t.id, r) for t in live for r in t.disclosed if t.real_commitment(r)]
        if call == "report upload not result node":
            return [(t.id, r) for t in live if t.is_success or t.aborted for r in range(3) if t.selected[r] != t.result_node]
        if call == "report upload twice":
            return [(t.id, t.round_of(t.result_node)) for t in live if t.upload_reported]
        if call == "createTask without nodes":
            return ["app1"] if m.available_nodes < 3 else []
        if call in ("join twice", "quit while pending", "pause while paused or pending", "resume while not paused"):
            bad = {
                "join twice": lambda s: s != NodeStatus.QUIT,
                "quit while pending": lambda s: s in (NodeStatus.PENDING_PAUSE, NodeStatus.PENDING_QUIT),
                "pause while paused or pending": lambda s: s in (NodeStatus.PAUSED, NodeStatus.PENDING_PAUSE, NodeStatus.PENDING_QUIT),
                "resume while not paused": lambda s: s != NodeStatus.PAUSED and s != NodeStatus.QUIT,
            }[call]
            return [n for n in nodes if bad(m.status[n])]
        if call == "fee set by stranger":
            return ["app1"]
        raise AssertionError(f"no candidates rule for {call!r}")

    def _forbid_cancel_before_deadline(self, task_id: int) -> None:
        task = self.model.tasks[task_id]
        self._cancel(task_id, task.creator, self.w.chain.now() + 1, " (before its deadline)")

    def _forbid_cancel_at_deadline(self, task_id: int) -> None:
        """In the block stamped exactly `timeout`: still too early (the next block is not)."""
        task = self.model.tasks[task_id]
        self.w.chain.set_next_timestamp(task.timeout)
        self._cancel(task_id, task.creator, task.timeout, " (in the block stamped with its deadline)")

    def _forbid_cancel_by_outsider(self, task_id: int) -> None:
        task = self.model.tasks[task_id]
        outsiders = [a for a in self.apps if a != task.creator] + [n for n in self.nodes if n not in task.selected]
        self._cancel(task_id, outsiders[task_id % len(outsiders)], self.w.chain.now() + 1, " (not its creator nor selected)")

    def _forbidden_commit(self, node: str, task_id: int, round_: int, nonce: bytes, how: str) -> None:
        commitment = keccak(b"forbidden" + nonce)
        self._act(
            f"{self._n(node)} commit ({how}) on {self._task_words(task_id, round_)}",
            lambda: self.model.commit(node, task_id, round_, commitment, nonce),
            self._send(node, self.d.task.submit_commitment, task_id, round_, commitment, nonce),
            task_id if self.model.live(task_id) else None,
        )

    def _forbid_commit_unknown_task(self, task_id: int) -> None:
        self._forbidden_commit(self.nodes[0], task_id, 0, nonce_for(task_id, 0, attempt=1), "unknown task")

    def _forbid_commit_round_3(self, task_id: int) -> None:
        self._forbidden_commit(self.model.tasks[task_id].selected[0], task_id, 3, nonce_for(task_id, 3), "round 3")

    def _forbid_commit_by_wrong_node(self, task_id: int) -> None:
        task = self.model.tasks[task_id]
        self._forbidden_commit(task.selected[1], task_id, 0, nonce_for(task_id, 0, attempt=1), "by the node of round 1")

    def _forbid_commit_on_aborted_task(self, spot: tuple[int, int]) -> None:
        self._commit(*spot, "honest")

    def _forbid_commit_zero_nonce(self, spot: tuple[int, int]) -> None:
        task_id, round_ = spot
        self._forbidden_commit(self.model.tasks[task_id].selected[round_], task_id, round_, ZERO_HASH, "zero nonce")

    def _forbid_commit_reused_nonce(self, spot: tuple[int, int]) -> None:
        task_id, round_ = spot
        task = self.model.tasks[task_id]
        used = next(n for n in task.nonces if n != ZERO_HASH)
        self._forbidden_commit(task.selected[round_], task_id, round_, used, "another round's nonce")

    def _forbid_commit_twice(self, spot: tuple[int, int]) -> None:
        task_id, round_ = spot
        self._forbidden_commit(self.model.tasks[task_id].selected[round_], task_id, round_, nonce_for(task_id, round_, attempt=2), "twice")

    def _forbid_disclose_tampered(self, spot: tuple[int, int]) -> None:
        result = self.secret[spot][0]
        self._disclose(*spot, bytes([result[0] ^ 1]) + result[1:], " (one bit off its commitment)")

    def _forbid_disclose_empty(self, spot: tuple[int, int]) -> None:
        self._disclose(*spot, b"", " (empty result)")

    def _forbid_disclose_early(self, spot: tuple[int, int]) -> None:
        self._disclose(*spot, how=" (before all commitments are in)")

    def _forbid_disclose_twice(self, spot: tuple[int, int]) -> None:
        self._disclose(*spot, how=" (again)")

    def _forbid_report_upload_not_result_node(self, spot: tuple[int, int]) -> None:
        self._report_uploaded(*spot, " (not the result node)")

    def _forbid_report_upload_twice(self, spot: tuple[int, int]) -> None:
        self._report_uploaded(*spot, " (again)")

    def _forbid_createTask_without_nodes(self, app: str) -> None:
        self._create_task(app, [0], 0)

    def _node_call(self, node: str, action: str) -> None:
        status = self.model.status[node].name
        self._act(
            f"{self._n(node)} {action} (was {status})",
            lambda: getattr(self.model, action)(node),
            self._send(node, getattr(self.d.node, action)),
        )

    def _forbid_join_twice(self, node: str) -> None:
        self._node_call(node, "join")

    def _forbid_quit_while_pending(self, node: str) -> None:
        self._node_call(node, "quit")

    def _forbid_pause_while_paused_or_pending(self, node: str) -> None:
        self._node_call(node, "pause")

    def _forbid_resume_while_not_paused(self, node: str) -> None:
        self._node_call(node, "resume")

    def _forbid_fee_set_by_stranger(self, app: str) -> None:
        who = self.w.apps[app].address
        self._act(
            f"{app} updateTaskFeePerNode(1 CNX)",
            lambda: self.model.set_fee(who, CNX),
            self._send(who, self.d.task.update_fee_per_node, CNX),
        )

    # ------------------------------------------------------------ invariants

    @invariant()
    def chain_matches_ledger(self) -> None:
        self._checks += 1
        self.model.self_check()
        self._verify(sweep=self._checks % SWEEP_EVERY == 1)

    def _verify(self, sweep: bool) -> None:
        """Every step: every CNX balance (from the token's Transfer logs), the run's nodes,
        the counters and the tasks the step acted on. A sweep (every SWEEP_EVERY steps
        and at the end of a run) reads balanceOf of every holder, all 8 nodes, every
        allowance and every task ever created, and checks the conservation laws that
        need all of them."""
        model = self.model
        if sweep:
            ids = list(range(1, model.total_tasks + 2))
            reading = self.w.read(ids)
            for holder, balance in reading.balances.items():
                assert balance == self.cnx[holder], f"balanceOf({self._n(holder)}) = {balance}, but its Transfer logs add up to {self.cnx[holder]}"
        else:
            ids = sorted(self.touched | {model.total_tasks + 1})
            reading = self.w.read(ids, nodes=self.nodes, allowances=None if self.check_allowances else [], balances=False)
        self._compare(reading, ids)
        self._conservation(reading, complete=sweep)
        self.touched.clear()
        self.check_allowances = False

    def _compare(self, r: Reading, ids: list[int]) -> None:
        m = self.model
        n = self._n
        for holder, balance in self.cnx.items():
            assert balance == m.balances[holder], f"CNX balance of {n(holder)}: chain {balance}, model {m.balances[holder]}"
        for (owner, spender), allowance in r.allowances.items():
            expected = m.allowances.get((owner, spender), 0)
            assert allowance == expected, f"allowance {n(owner)} -> {n(spender)}: chain {allowance}, model {expected}"
        for node, status in r.status.items():
            assert status == m.status[node], f"status of {n(node)}: chain {status.name}, model {m.status[node].name}"
        for node, task_id in r.node_task.items():
            expected = m.node_task.get(node, 0)
            assert task_id == expected, f"getNodeTask({n(node)}): chain {task_id}, model {expected}"
        counters = {
            "totalTasks": (r.total_tasks, m.total_tasks),
            "totalSuccessTasks": (r.total_success, m.total_success),
            "totalAbortedTasks": (r.total_aborted, m.total_aborted),
            "totalNodes": (r.total_nodes, m.total_nodes),
            "availableNodes": (r.available_nodes, m.available_nodes),
            "taskFeePerNode": (r.fee, m.fee),
            "distanceThreshold": (r.threshold, m.threshold),
            "timeout": (r.timeout, m.timeout),
            "totalSupply": (r.supply, m.supply),
        }
        for name, (chain, model) in counters.items():
            assert chain == model, f"{name}: chain {chain}, model {model}"
        for task_id in ids:
            self._compare_task(task_id, r.tasks[task_id], r.task_fees[task_id])

    def _compare_task(self, task_id: int, info: TaskInfo, fee: int) -> None:
        task = self.model.live(task_id)
        if task is None:
            assert info.id == 0, f"task {task_id}: the model says it does not exist (deleted or never created), the chain has {info}"
            assert info.balance == 0 and not info.is_success and not info.aborted and info.result_node == ZERO_ADDRESS
            return
        n = self._n
        expected = {
            "id": task.id,
            "creator": task.creator,
            "taskHash": task.task_hash,
            "dataHash": task.data_hash,
            "isSuccess": task.is_success,
            "selectedNodes": [n(a) for a in task.selected],
            "commitments": tuple(task.commitments),
            "nonces": tuple(task.nonces),
            "results": tuple(task.results),
            "resultDisclosedRounds": tuple(task.disclosed),
            "resultNode": n(task.result_node),
            "aborted": task.aborted,
            "timeout": task.timeout,
            "balance": task.balance,
            "getTaskFee": task.fee,
        }
        actual = {
            "id": info.id,
            "creator": info.creator,
            "taskHash": info.task_hash,
            "dataHash": info.data_hash,
            "isSuccess": info.is_success,
            "selectedNodes": [n(a) for a in info.selected_nodes],
            "commitments": info.commitments,
            "nonces": info.nonces,
            "results": info.results,
            "resultDisclosedRounds": info.result_disclosed_rounds,
            "resultNode": n(info.result_node),
            "aborted": info.aborted,
            "timeout": info.timeout,
            "balance": info.balance,
            "getTaskFee": fee,
        }
        diff = {k: (actual[k], expected[k]) for k in expected if actual[k] != expected[k]}
        assert not diff, f"task {task_id} (chain, model): {diff}"

    def _conservation(self, r: Reading, complete: bool) -> None:
        """PROTOCOL.md 3's invariants, on what the chain says alone."""
        task_contract, node_contract = self.d.task.address, self.d.node.address
        assert r.supply == self.w.baseline.supply, "CNX total supply changed"
        assert sum(self.cnx.values()) == r.supply, "CNX left the known holders"
        live = {i: t for i, t in r.tasks.items() if t.id != 0}
        # Every task read: escrow + paid + refunded = 3f (all flows out of Task go to
        # the task's nodes or back to its creator); a deleted task has paid out all.
        for task_id in r.tasks:
            deposited = self.deposited.get(task_id, 0)
            paid = self.paid_out.get(task_id, 0)
            if task_id in live:
                fee = r.task_fees[task_id]
                assert deposited == 3 * fee, f"task {task_id}: deposited {deposited} != 3 x fee {fee}"
                assert live[task_id].balance + paid == deposited, f"task {task_id}: escrow {live[task_id].balance} + paid/refunded {paid} != 3f {deposited}"
            else:
                assert paid == deposited, f"task {task_id} is gone but paid/refunded {paid} of its escrow {deposited}"
        if not complete:
            return  # the rest needs every task and every node
        assert sum(r.balances.values()) == r.supply, "balanceOf of the known holders does not add up to the supply"
        assert r.balances[task_contract] == sum(t.balance for t in live.values()), (
            f"Task holds {r.balances[task_contract]}, live escrows add up to {sum(t.balance for t in live.values())}"
        )
        joined = [a for a, s in r.status.items() if s != NodeStatus.QUIT]
        assert r.balances[node_contract] == STAKE_AMOUNT * len(joined), f"Node holds {r.balances[node_contract]} for {len(joined)} joined nodes"
        available = [a for a, s in r.status.items() if s == NodeStatus.AVAILABLE]
        assert r.available_nodes == len(available), f"availableNodes() = {r.available_nodes}, {len(available)} nodes are AVAILABLE"
        assert r.total_nodes == len(joined), f"totalNodes() = {r.total_nodes}, {len(joined)} nodes are joined"
        for node, task_id in r.node_task.items():
            busy = r.status[node] in BUSY_STATES
            assert busy == (task_id != 0), f"{self._n(node)} is {r.status[node].name} and bound to task {task_id}"
            if task_id:
                info = r.tasks.get(task_id)
                assert info is not None and info.id == task_id, f"{self._n(node)} is bound to task {task_id}, which does not exist"
                assert node in info.selected_nodes, f"{self._n(node)} is bound to task {task_id} without being selected"


def test_settlement_machine(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """Random protocol sequences: the chain matches the ghost ledger after every step.

    The profile's max_examples runs make one batch; the deep profile adds batches (each
    with the next seed, sized to the shortfall) until 256 runs of at least LONG_RUN
    steps are complete, and shows its progress on the terminal (pytest's capture is off
    while it runs)."""

    def machine() -> SettlementMachine:
        return SettlementMachine(world)

    required = long_runs_required()
    batch_settings = settings()
    with capsys.disabled() if required else contextlib.nullcontext():
        while True:
            before = STATS.long_runs
            run_state_machine_as_test(seeded(machine, batch=STATS.batches), settings=batch_settings)
            STATS.batches += 1
            if STATS.long_runs >= required:
                break
            assert STATS.long_runs > before, f"a batch completed no run of {LONG_RUN} steps: the profile cannot reach {required}"
            # Most runs reach LONG_RUN steps: twice the shortfall is usually one more batch.
            batch_settings = settings(batch_settings, max_examples=max(32, 2 * (required - STATS.long_runs)))
    print(f"\n{STATS.summary()}")
