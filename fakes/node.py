"""A simulated GPU node: a state machine over chain events and Relay answers.

Like crynux-node it follows `TaskCreated` for itself, fetches the args from the
Relay (retrying while the Relay answers "not ready"), reports an error for args
it cannot run, commits `keccak(result ++ nonce)`, discloses on
`TaskResultCommitmentsReady`, uploads the images and reports when it is the
result node, reports an error after `TaskAborted` if it had not committed, and
cancels once the deadline has passed. Each `step()` performs at most one action,
so a simulation interleaves nodes deterministically.

Given a `TaskStore` (the sandbox's, when it persists), the node keeps each task
in flight there as a real node keeps it in its database: the result and nonce
are saved before the commitment is sent, each later phase as it is reached, and
a finished task is dropped. `resume()` takes the tasks back after a restart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak

from hydrogen_harness.fakes.behaviour import Behaviour, CrashPoint, WorkKind
from hydrogen_harness.fakes.diffusion import DeterministicGenerator, ImageGenerator, jitter
from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.protocol.actions import Action, ActionKind
from hydrogen_harness.protocol.events import TaskAborted, TaskCreated, TaskEvent, TaskResultCommitmentsReady, TaskSuccess
from hydrogen_harness.protocol.phash import result_bytes
from hydrogen_harness.protocol.constants import ERROR_COMMITMENT, NodeStatus, TaskInfo, commitment_of, task_deadline
from hydrogen_harness.client.relay import RelayClient, RelayError, RelayMessage, RelayNotReady, RelayUnavailable
from hydrogen_harness.client.unfinished import UnfinishedIndex
from hydrogen_harness.protocol.reverts import RevertError, RevertReason
from hydrogen_harness.protocol.task_args import TaskArgsError, parse_task_args

__all__ = ["NodeRequest", "NodeTask", "NodeTaskPhase", "SimulatedNode", "TaskStore"]

_NO_COMMITMENT = bytes(32)
_NO_ADDRESS = "0x" + "00" * 20


class NodeRequest(StrEnum):
    """What a node can be asked to do on its next step, each one Node contract call."""

    JOIN = "join"
    QUIT = "quit"
    PAUSE = "pause"
    RESUME = "resume"


class NodeTaskPhase(str, Enum):
    ASSIGNED = "assigned"  # selected; args not fetched or not yet committed
    COMMITTED = "committed"  # waiting for TaskResultCommitmentsReady
    DISCLOSED = "disclosed"  # waiting for the outcome
    UPLOADED = "uploaded"  # images on the Relay, report not yet sent
    ERROR_REPORTED = "error reported"  # waiting for the outcome or the deadline
    DONE = "done"


@dataclass
class NodeTask:
    task_id: int
    round: int
    deadline: int
    phase: NodeTaskPhase = NodeTaskPhase.ASSIGNED
    ready: bool = False
    result_node: str | None = None
    aborted: str | None = None
    images: list[bytes] = field(default_factory=list)
    result: bytes = b""
    nonce: bytes = b""
    resumed: bool = False  # taken back after a restart: its images are no longer in memory

    def record(self) -> dict[str, Any]:
        """What the node's store keeps of the task (the chain holds the rest)."""
        return {
            "round": self.round,
            "deadline": self.deadline,
            "phase": self.phase.value,
            "result": self.result.hex(),
            "nonce": self.nonce.hex(),
        }


class TaskStore(Protocol):
    """Where a node keeps its tasks in flight (`hydrogen_harness.sandbox.node_store.NodeTaskFile`)."""

    def load(self) -> dict[int, dict[str, Any]]: ...

    def save(self, task_id: int, record: dict[str, Any]) -> None: ...

    def drop(self, task_id: int) -> None: ...

    def clear(self) -> None: ...


class SimulatedNode:
    """One node account with a `Behaviour`; see the module docstring."""

    def __init__(
        self,
        name: str,
        deployment: Deployment,
        account: LocalAccount,
        relay: RelayClient,
        behaviour: Behaviour | None = None,
        generator: ImageGenerator | None = None,
        seed: int = 0,
        store: TaskStore | None = None,
    ) -> None:
        self.name = name
        self.deployment = deployment
        self.account = account
        self.relay = relay
        self.behaviour = behaviour or Behaviour()
        self.generator = generator or DeterministicGenerator()
        self.seed = seed
        self.store = store
        self.tasks: dict[int, NodeTask] = {}
        self._active: UnfinishedIndex[int, NodeTask] = UnfinishedIndex(lambda task: task.phase is NodeTaskPhase.DONE)
        self.crashed = False
        self.steps = 0
        # What the node did, in order.
        self.actions: list[Action] = []
        self._requests: list[NodeRequest] = []

    @property
    def address(self) -> str:
        return str(self.account.address)

    def __repr__(self) -> str:
        return f"SimulatedNode({self.name}, {self.address}, {self.behaviour})"

    # ------------------------------------------------------------ lifecycle

    def join(self) -> None:
        """Stake and join now (the account must hold 400 CNX and have approved Node)."""
        self.deployment.node.join(self.account)
        self._did(None, "join", ActionKind.TRANSACTION)

    def request(self, action: NodeRequest | str) -> None:
        """Ask the node to join, quit, pause or resume on its next step."""
        try:
            request = NodeRequest(action)
        except ValueError:
            raise ValueError(f"a node can be asked to join, quit, pause or resume, not {action!r}") from None
        self._requests.append(request)

    def _send_request(self, request: NodeRequest) -> None:
        registry = self.deployment.node
        send = {
            NodeRequest.JOIN: registry.join,
            NodeRequest.QUIT: registry.quit,
            NodeRequest.PAUSE: registry.pause,
            NodeRequest.RESUME: registry.resume,
        }[request]
        send(self.account)

    def _did(self, task_id: int | None, what: str, kind: ActionKind) -> None:
        self.actions.append(Action(task_id, what, kind))

    @property
    def has_requests(self) -> bool:
        """A quit, pause, resume or join is waiting for the node's next step."""
        return bool(self._requests)

    def status(self) -> NodeStatus:
        return self.deployment.node.status(self.address)

    def reset(self) -> None:
        """Start afresh, as a restarted node process would (the chain was reverted under
        it): no tasks, no pending requests, no crash, no history."""
        self.tasks.clear()
        self._active.forget()
        if self.store is not None:
            self.store.clear()
        self._requests.clear()
        self.actions.clear()
        self.crashed = False
        self.steps = 0

    # ------------------------------------------------------------ events

    def observe(self, events: Iterable[TaskEvent]) -> None:
        """Take in new Task events (in chain order); only this node's tasks matter."""
        for event in events:
            if isinstance(event, TaskCreated):
                if event.selected_node == self.address and event.task_id not in self.tasks:
                    new = self.tasks[event.task_id] = NodeTask(event.task_id, event.round, self._deadline(event))
                    self._active.added(self.tasks, event.task_id, new)
                continue
            task = self.tasks.get(event.task_id)
            if task is None:
                continue
            if isinstance(event, TaskResultCommitmentsReady):
                task.ready = True
            elif isinstance(event, TaskSuccess):
                task.result_node = event.result_node
            elif isinstance(event, TaskAborted):
                task.aborted = event.reason

    def resume(self, live: Sequence[TaskInfo], events: Iterable[TaskEvent]) -> list[int]:
        """After a restart, take back this node's tasks that are still in flight.

        `live` is every task the contract still holds, `events` the Task events since
        the deployment. The chain says how far each task got (this round's commitment,
        its disclosure, the result node); the store gives what the chain does not (the
        result committed to, whether the images are on the Relay). Returns the ids of
        tasks this node committed to but cannot disclose (no saved result matches its
        commitment): they can only be cancelled after their deadline."""
        saved = self.store.load() if self.store is not None else {}
        lost: list[int] = []
        for info in live:
            try:
                round_ = info.round_of(self.address)
            except ValueError:
                continue
            record = saved.get(info.id, {})
            task = NodeTask(info.id, round_, info.timeout, resumed=True)
            commitment = info.commitments[round_]
            if commitment == _NO_COMMITMENT:
                task.phase = NodeTaskPhase.ASSIGNED  # runs the task afresh
            elif commitment == ERROR_COMMITMENT:
                task.phase = NodeTaskPhase.ERROR_REPORTED
            elif round_ in info.result_disclosed_rounds:
                if info.result_node not in (_NO_ADDRESS, self.address):
                    continue  # disclosed, and another node has the result to upload: its part is done
                # Disclosed: the result is on chain now. The store says whether it was uploaded.
                task.result, task.nonce = info.results[round_], info.nonces[round_]
                uploaded = record.get("phase") == NodeTaskPhase.UPLOADED.value
                task.phase = NodeTaskPhase.UPLOADED if uploaded else NodeTaskPhase.DISCLOSED
            else:
                # Committed, not disclosed: only the store knows the result behind the commitment.
                result = bytes.fromhex(str(record.get("result", "")))
                if not result or commitment_of(result, info.nonces[round_]) != commitment:
                    lost.append(info.id)
                    self._did(info.id, "resume failed: the result committed to was not saved", ActionKind.FAILURE)
                    continue
                task.result, task.nonce = result, info.nonces[round_]
                task.phase = NodeTaskPhase.COMMITTED
            if info.result_node != _NO_ADDRESS:
                task.result_node = info.result_node
            self.tasks[info.id] = task
            # A task whose error report stands is on the error path, as a fresh report is.
            kind = ActionKind.ERROR_REPORT if task.phase is NodeTaskPhase.ERROR_REPORTED else ActionKind.INFO
            self._did(info.id, f"resumed ({task.phase.value})", kind)
        self._active.forget()  # tasks were replaced in place
        ours = {task_id for task_id, task in self.tasks.items() if task.resumed}
        self.observe(e for e in events if e.task_id in ours and not isinstance(e, TaskCreated))
        if self.store is not None:
            for task_id in saved:
                if task_id not in ours:
                    self.store.drop(task_id)  # finished (or lost) while the node was down
            for task_id in ours:
                self._persist(self.tasks[task_id])
        return lost

    def _deadline(self, event: TaskCreated) -> int:
        # Two cheap reads instead of the whole getTask tuple. Should the owner change the
        # timeout parameter meanwhile, an early cancel reverts and `_cancel` reads the truth.
        chain = self.deployment.chain
        return task_deadline(chain.block_timestamp(event.block_number), self.deployment.task.timeout())

    # ------------------------------------------------------------ stepping

    def active(self) -> list[NodeTask]:
        """The tasks not done, in the order they came."""
        return self._active.unfinished(self.tasks)

    def waiting_on(self) -> str:
        """What the node waits for, for a stuck simulation's error message."""
        if self.crashed:
            return "crashed"
        if self.behaviour.offline:
            return "offline"
        parts = [f"task {t.task_id} round {t.round} {t.phase.value}" for t in self.active()]
        return ", ".join(parts) or "idle"

    def step(self) -> bool:
        """Perform at most one action; True if the node did something."""
        self.steps += 1
        if self.crashed or self.behaviour.offline or self.steps % self.behaviour.every:
            return False
        if self._requests:
            request = self._requests.pop(0)
            try:
                self._send_request(request)
                self._did(None, request.value, ActionKind.TRANSACTION)
            except RevertError as exc:
                self._did(None, f"{request.value} reverted: {exc.reason}", ActionKind.FAILURE)
            return True
        for task in sorted(self.active(), key=lambda t: t.task_id):
            if self._act(task):
                return True
        return False

    def _act(self, task: NodeTask) -> bool:
        now = self.deployment.chain.now()
        if now > task.deadline:
            return self._cancel(task)
        phase = task.phase
        if phase is NodeTaskPhase.ASSIGNED:
            if task.aborted is not None:
                return self._report_error(task, "after TaskAborted")
            return self._run(task)
        if phase is NodeTaskPhase.COMMITTED:
            if task.aborted is not None:
                return self._finish(task)
            if task.ready:
                if self._crash(CrashPoint.BEFORE_DISCLOSE):
                    return True
                return self._tx(task, "disclose", self.deployment.task.disclose, task.result, next_phase=NodeTaskPhase.DISCLOSED)
            return False
        if phase is NodeTaskPhase.DISCLOSED:
            if task.result_node == self.address:
                return self._upload(task)
            if task.result_node is not None or task.aborted is not None:
                return self._finish(task)
            return False
        if phase is NodeTaskPhase.UPLOADED:
            if self._crash(CrashPoint.BEFORE_REPORT):
                return True
            return self._tx(task, "report uploaded", self.deployment.task.report_uploaded, next_phase=NodeTaskPhase.DONE)
        if phase is NodeTaskPhase.ERROR_REPORTED:
            if task.result_node is not None or task.aborted is not None:
                return self._finish(task)
        return False

    def _finish(self, task: NodeTask) -> bool:
        self._move(task, NodeTaskPhase.DONE)
        return False  # bookkeeping only: no transaction

    def _move(self, task: NodeTask, phase: NodeTaskPhase) -> None:
        task.phase = phase
        self._persist(task)

    def _persist(self, task: NodeTask) -> None:
        if self.store is None:
            return
        if task.phase is NodeTaskPhase.DONE:
            self.store.drop(task.task_id)
        else:
            self.store.save(task.task_id, task.record())

    def _crash(self, point: CrashPoint) -> bool:
        if self.behaviour.crash_at is point:
            self.crashed = True
            self._did(None, f"crashed {point.value}", ActionKind.FAILURE)
            return True
        return False

    def _tx(
        self,
        task: NodeTask,
        label: str,
        send: Any,
        *extra: Any,
        next_phase: NodeTaskPhase,
        kind: ActionKind = ActionKind.TRANSACTION,
    ) -> bool:
        try:
            send(self.account, task.task_id, task.round, *extra)
        except RevertError as exc:
            self._did(task.task_id, f"{label} reverted: {exc.reason}", ActionKind.FAILURE)
            if exc.reason == RevertReason.TASK_IS_ABORTED and task.phase is NodeTaskPhase.ASSIGNED:
                return self._report_error(task, f"commit reverted: {RevertReason.TASK_IS_ABORTED}")
            self._move(task, NodeTaskPhase.DONE)
            return True
        self._did(task.task_id, label, kind)
        self._move(task, next_phase)
        return True

    def _report_error(self, task: NodeTask, why: str) -> bool:
        self._did(task.task_id, f"error ({why})", ActionKind.ERROR_REPORT)
        return self._tx(
            task, "report error", self.deployment.task.report_error, next_phase=NodeTaskPhase.ERROR_REPORTED, kind=ActionKind.ERROR_REPORT
        )

    def _cancel(self, task: NodeTask) -> bool:
        try:
            self.deployment.task.cancel(self.account, task.task_id)
            self._did(task.task_id, "cancel", ActionKind.CANCEL)
        except RevertError as exc:
            self._did(task.task_id, f"cancel reverted: {exc.reason}", ActionKind.FAILURE)
            if exc.reason == RevertReason.DEADLINE_NOT_EXCEEDED:
                task.deadline = self.deployment.task.get_task(task.task_id).timeout
                return True
        self._move(task, NodeTaskPhase.DONE)
        return True

    def _run(self, task: NodeTask) -> bool:
        try:
            relay_task = self.relay.get_task(self.account, task.task_id)
        except (RelayNotReady, RelayUnavailable):
            return False  # args not uploaded yet, or the Relay is down: ask again next step
        try:
            args = parse_task_args(relay_task.task_args)
        except TaskArgsError as exc:
            return self._report_error(task, f"invalid args: {exc.field}: {exc.message}")
        if self.behaviour.kind is WorkKind.ERROR:
            return self._report_error(task, "behaviour")
        if self._crash(CrashPoint.BEFORE_COMMIT):
            return True
        try:
            task.images = self._images(json.loads(relay_task.task_args), args.task_config.num_images, task.task_id)
        except ValueError as exc:  # args this node cannot run (e.g. too large an image)
            return self._report_error(task, f"cannot run: {exc}")
        task.result = result_bytes(task.images)
        task.nonce = keccak(f"nonce:{self.seed}:{self.address}:{task.task_id}".encode())
        # On disk before the commitment is on chain: a node that dies between the two
        # can still disclose after a restart.
        self._persist(task)
        acted = self._tx(
            task,
            "commit",
            self.deployment.task.submit_commitment,
            commitment_of(task.result, task.nonce),
            task.nonce,
            next_phase=NodeTaskPhase.COMMITTED,
        )
        self._crash(CrashPoint.AFTER_COMMIT)
        return acted

    def _images(self, args: dict[str, Any], count: int, task_id: int) -> list[bytes]:
        if self.behaviour.kind is WorkKind.CHEATER:
            config = dict(args.get("task_config") or {})
            # Each cheater cheats its own way, so cheaters never agree with each other.
            config["seed"] = (int(config.get("seed", 0)) + 1 + int(self.address, 16) % 2**30) % 2**31
            args = {**args, "task_config": config}
        images = [self.generator.generate(args, i) for i in range(count)]
        if self.behaviour.kind is WorkKind.JITTER:
            images = [jitter(png, seed=self.seed * 1_000_003 + task_id * 101 + i) for i, png in enumerate(images)]
        return images

    def _upload(self, task: NodeTask) -> bool:
        if self._crash(CrashPoint.BEFORE_UPLOAD):
            return True
        if not task.images and not self._rebuild_images(task):
            return task.phase is NodeTaskPhase.DONE  # given up (that is an action), or later
        try:
            self.relay.upload_results(self.account, task.task_id, task.images)
        except (RelayNotReady, RelayUnavailable):
            return False
        except RelayError as exc:
            if exc.message == RelayMessage.TASK_NOT_SUCCESS and (exc.after_ambiguous_failure or task.resumed):
                # An earlier attempt got through but its answer was lost, or the node
                # died after uploading and before saving that it had.
                self._move(task, NodeTaskPhase.UPLOADED)
                return True
            self._did(task.task_id, f"upload failed: {exc.message}", ActionKind.FAILURE)
            self._move(task, NodeTaskPhase.DONE)
            return True
        self._did(task.task_id, f"upload {len(task.images)} images", ActionKind.RELAY)
        self._move(task, NodeTaskPhase.UPLOADED)
        return True

    def _rebuild_images(self, task: NodeTask) -> bool:
        """A resumed result node's images (they were in the memory of the process that
        died): the task is run again and must give the result committed to. False if
        not rebuilt: the Relay is not answering (try later) or, with the task moved to
        DONE, they cannot be."""
        try:
            relay_task = self.relay.get_task(self.account, task.task_id)
        except (RelayNotReady, RelayUnavailable):
            return False
        except RelayError as exc:
            self._did(task.task_id, f"upload failed: cannot fetch the args again: {exc.message}", ActionKind.FAILURE)
            self._move(task, NodeTaskPhase.DONE)
            return False
        count = parse_task_args(relay_task.task_args).task_config.num_images
        images = self._images(json.loads(relay_task.task_args), count, task.task_id)
        if result_bytes(images) != task.result:
            self._did(task.task_id, "upload failed: the images run again differ from the result committed to", ActionKind.FAILURE)
            self._move(task, NodeTaskPhase.DONE)
            return False
        task.images = images
        return True
