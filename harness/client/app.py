"""The application client: the whole workflow of an app on the Hydrogen Network.

It is real code: given an RPC URL, a Relay URL, the contract addresses and a key
(`Application.connect`) it runs against a real network as against the simulated
one. The workflow per task (a `Job`): validate the args, make sure of the
allowance, `createTask` (its signed bytes saved first), upload the args, follow
`TaskSuccess`/`TaskAborted`, download every image. Each call to `step()` moves
every unfinished job on by at most one action, so the simulation can interleave
it with the nodes; `run()` loops `step()` for a blocking caller.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from eth_account.signers.local import LocalAccount

from hydrogen_harness.client.store import Job, JobPhase, ProgressStore
from hydrogen_harness.client.unfinished import UnfinishedIndex
from hydrogen_harness.chain.chain import Chain
from hydrogen_harness.chain.contracts import TASK_GAS, Deployment
from hydrogen_harness.chain.event_feed import ContractChainSource, EventFeed
from hydrogen_harness.protocol.actions import Action, ActionKind
from hydrogen_harness.protocol.events import AbortReason, TaskAborted, TaskCreated, TaskSuccess
from hydrogen_harness.chain.ledger import Ledger, MovementKind
from hydrogen_harness.protocol.constants import ROUNDS, ZERO_HASH, task_deadline
from hydrogen_harness.client.relay import RelayAlreadyDone, RelayClient, RelayNotReady, RelayUnavailable
from hydrogen_harness.protocol.reverts import RevertError, RevertReason
from hydrogen_harness.protocol.task_args import TaskArgs, parse_task_args, task_hash, validate_task_args

__all__ = [
    "AllowanceMode",
    "AppError",
    "Application",
    "BalanceAlert",
    "InsufficientFunds",
    "TaskOutcome",
    "TaskResult",
    "WatchMode",
]

APPROVE_GAS = 100_000
UNLIMITED = 2**256 - 1


class AllowanceMode(str, Enum):
    EXACT = "exact"  # approve 3 fees before each task
    UNLIMITED = "unlimited"  # approve once, never spent (no Approval log on createTask)
    MANUAL = "manual"  # the caller manages the allowance


class WatchMode(str, Enum):
    EVENTS = "events"  # follow TaskSuccess/TaskAborted logs from a saved block cursor
    POLL = "poll"  # poll getTask, falling back to logs once the task is deleted


class TaskOutcome(str, Enum):
    PENDING = "pending"
    SUCCESS = "success"
    ABORTED = "aborted"
    FAILED = "failed"


class AppError(Exception):
    """A problem of the application's own making or of its wallet."""


class InsufficientFunds(AppError):
    pass


@dataclass(frozen=True)
class BalanceAlert:
    address: str
    cnx: int
    eth: int
    cnx_needed: int
    eth_needed: int

    @property
    def message(self) -> str:
        return (
            f"wallet {self.address} holds {self.cnx} CNX units and {self.eth} wei; "
            f"the next task needs {self.cnx_needed} CNX units and about {self.eth_needed} wei"
        )


@dataclass(frozen=True)
class TaskResult:
    key: str
    task_id: int | None
    outcome: TaskOutcome
    abort_reason: str | None
    images: list[bytes]
    result: bytes
    result_node: str | None
    selected_nodes: list[str]
    fees_paid: int
    refunds: int
    tx_hashes: list[str] = field(default_factory=list)
    error: str | None = None


def _job_key(args_json: str, nonce: int) -> str:
    return hashlib.sha256(f"{nonce}:{args_json}".encode()).hexdigest()[:16]


class Application:
    """One application wallet running tasks; see the module docstring."""

    def __init__(
        self,
        deployment: Deployment,
        account: LocalAccount,
        relay: RelayClient,
        *,
        store: ProgressStore | None = None,
        name: str = "app",
        allowance: AllowanceMode = AllowanceMode.EXACT,
        watch: WatchMode = WatchMode.EVENTS,
        alert: Callable[[BalanceAlert], None] | None = None,
        alert_tasks: int = 2,
        auto_cancel: bool = True,
    ) -> None:
        self.name = name
        self.deployment = deployment
        self.chain: Chain = deployment.chain
        self.account = account
        self.relay = relay
        self.store = store or ProgressStore()
        self._pending: UnfinishedIndex[str, Job] = UnfinishedIndex(lambda job: job.phase.finished)
        self.allowance = AllowanceMode(allowance)
        self.watch = WatchMode(watch)
        self.alert = alert
        self.alert_tasks = alert_tasks
        self.auto_cancel = auto_cancel
        self.ledger = Ledger(deployment, party=account.address)
        self._submitted = len(self.store.jobs)
        # What the application did, in order.
        self.actions: list[Action] = []

    @property
    def address(self) -> str:
        return str(self.account.address)

    # ------------------------------------------------------------ balances

    def check_balance(self) -> BalanceAlert | None:
        """Alert (and return the alert) when the wallet cannot pay `alert_tasks` more tasks."""
        fee = self.deployment.task.fee_per_node()
        cnx = self.deployment.token.balance_of(self.address)
        eth = self.chain.eth_balance(self.address)
        cnx_needed = ROUNDS * fee
        eth_needed = (TASK_GAS + APPROVE_GAS) * self._max_fee_per_gas()
        if cnx >= cnx_needed * self.alert_tasks and eth >= eth_needed * self.alert_tasks:
            return None
        alert = BalanceAlert(self.address, cnx, eth, cnx_needed, eth_needed)
        if self.alert is not None:
            self.alert(alert)
        return alert

    def _max_fee_per_gas(self) -> int:
        return self.chain.max_fee_per_gas()

    def _require_funds(self, fee: int) -> None:
        cnx = self.deployment.token.balance_of(self.address)
        if cnx < ROUNDS * fee:
            raise InsufficientFunds(
                f"wallet {self.address} holds {cnx} CNX units but a task costs {ROUNDS * fee} ({ROUNDS} x {fee})"
            )
        eth = self.chain.eth_balance(self.address)
        eth_needed = TASK_GAS * self._max_fee_per_gas()
        if eth < eth_needed:
            raise InsufficientFunds(f"wallet {self.address} holds {eth} wei but createTask may cost up to {eth_needed} wei of gas")

    def _ensure_allowance(self, job: Job, fee: int) -> None:
        if self.allowance is AllowanceMode.MANUAL:
            return
        task = self.deployment.task
        current = self.deployment.token.allowance(self.address, task.address)
        needed = ROUNDS * fee
        if current >= needed:
            return
        amount = UNLIMITED if self.allowance is AllowanceMode.UNLIMITED else needed
        receipt = self.deployment.token.approve(self.account, task.address, amount)
        self.actions.append(Action(None, "approve unlimited" if amount == UNLIMITED else f"approve {amount}", ActionKind.TRANSACTION))
        job.tx_hashes.append("0x" + bytes(receipt["transactionHash"]).hex())

    # ------------------------------------------------------------ submitting

    def submit(self, args: TaskArgs | Mapping[str, Any] | str, key: str | None = None) -> str:
        """Validate `args` and create the task on chain; returns the job key.

        A `key` makes the call idempotent: submitting the same key again (say
        after a restart) returns the existing job and creates nothing.
        """
        args_json = self._args_json(args)
        if key is not None and key in self.store.jobs:
            return key
        key = key or _job_key(args_json, self._submitted)
        self._submitted += 1
        job = Job(key=key, args_json=args_json, task_hash="0x" + task_hash(args_json).hex())
        self.store.jobs[key] = job
        self._pending.added(self.store.jobs, key, job)
        self.store.save()
        self._checkpoint("submitted", job)
        self._create(job)
        return key

    @staticmethod
    def _args_json(args: TaskArgs | Mapping[str, Any] | str) -> str:
        if isinstance(args, str):
            parse_task_args(args)  # validates; the exact string is what gets hashed
            return args
        model = args if isinstance(args, TaskArgs) else validate_task_args(args)
        return model.to_json()

    def _create(self, job: Job) -> None:
        if self.store.cursor is None:
            self.store.cursor = self.chain.block_number + 1
        task = self.deployment.task
        if job.phase is JobPhase.NEW:
            fee = task.fee_per_node()
            try:
                self._require_funds(fee)
            except InsufficientFunds:
                del self.store.jobs[job.key]  # nothing was sent: forget the job
                self.store.save()
                raise
            self._ensure_allowance(job, fee)
            call = task.create_task_call(bytes.fromhex(job.task_hash[2:]), ZERO_HASH)
            signed = self.chain.sign(self.account, to=task.address, data=call.data, gas=TASK_GAS)
            job.create_tx_hash, job.create_tx_raw = signed.tx_hash, signed.raw.hex()
            job.phase = JobPhase.CREATING
            self.store.save()
            self._checkpoint("signed", job)
            try:
                receipt = self.chain.send_signed(signed, label="createTask")
            except RevertError as exc:
                self._fail(job, f"createTask reverted: {exc.reason}")
                raise
            self._checkpoint("sent", job)
        else:
            receipt = self._resume_creation(job)
            if receipt is None:
                return
        self._created(job, receipt)

    def _resume_creation(self, job: Job) -> Any:
        assert job.create_tx_hash is not None and job.create_tx_raw is not None
        receipt = self.chain.find_receipt(job.create_tx_hash)
        if receipt is None:
            try:
                receipt = self.chain.resend(bytes.fromhex(job.create_tx_raw))
            except Exception as exc:  # the nonce was taken by something else: never re-sign
                self._fail(job, f"createTask {job.create_tx_hash} could not be resent: {exc}")
                return None
        if receipt["status"] != 1:
            self._fail(job, f"createTask {job.create_tx_hash} reverted")
            return None
        return receipt

    def _created(self, job: Job, receipt: Any) -> None:
        task = self.deployment.task
        created = [e for e in task.events(receipt) if isinstance(e, TaskCreated)]
        if not created:
            self._fail(job, "createTask emitted no TaskCreated event")
            return
        job.task_id = created[0].task_id
        job.selected_nodes = [e.selected_node for e in sorted(created, key=lambda e: e.round)]
        job.created_block = int(receipt["blockNumber"])
        job.tx_hashes.append(job.create_tx_hash or "")
        job.deadline = task_deadline(self.chain.block_timestamp(job.created_block), task.timeout())
        job.phase = JobPhase.CREATED
        self.actions.append(Action(job.task_id, f"createTask -> task {job.task_id}", ActionKind.TRANSACTION))
        self.store.save()
        self._checkpoint("created", job)
        self.check_balance()

    def _fail(self, job: Job, message: str) -> None:
        job.phase = JobPhase.FAILED
        job.error = message
        self.store.save()

    def _checkpoint(self, name: str, job: Job) -> None:
        """A named point of the workflow where a crash is survivable (tests hook it)."""

    # ------------------------------------------------------------ stepping

    def pending(self) -> list[Job]:
        """The unfinished jobs, in submission order (jobs added, removed or loaded are
        picked up: the index follows `store.jobs`)."""
        return self._pending.unfinished(self.store.jobs)

    def step(self) -> bool:
        """Move every unfinished job on by at most one action; True if anything moved."""
        moved = False
        if self.watch is WatchMode.EVENTS:
            moved |= self._follow_events()
        for job in self.pending():
            before = (job.phase, job.images_downloaded)
            self._step_job(job)
            moved |= (job.phase, job.images_downloaded) != before
        return moved

    def _step_job(self, job: Job) -> None:
        if job.phase in (JobPhase.NEW, JobPhase.CREATING):
            self._create(job)
        elif job.phase is JobPhase.CREATED:
            self._upload_args(job)
        elif job.phase is JobPhase.UPLOADED:
            if self.watch is WatchMode.POLL:
                self._poll_task(job)
            if job.phase is JobPhase.UPLOADED:
                self._maybe_cancel(job)
        elif job.phase is JobPhase.SUCCEEDED:
            self._download_next(job)
            if job.phase is JobPhase.SUCCEEDED:
                self._maybe_cancel(job)

    def _upload_args(self, job: Job) -> None:
        assert job.task_id is not None
        try:
            self.relay.upload_task_args(self.account, job.task_id, job.args_json)
        except (RelayNotReady, RelayUnavailable):
            return  # the Relay has not seen the task yet, or is down: next step
        except RelayAlreadyDone:
            pass  # uploaded before (an answer lost, or a restart): done all the same
        job.phase = JobPhase.UPLOADED
        self.actions.append(Action(job.task_id, "args uploaded", ActionKind.RELAY))
        self.store.save()
        self._checkpoint("uploaded", job)

    def _follow_events(self) -> bool:
        if self.store.cursor is None:
            return False
        head = self.chain.block_number
        if head < self.store.cursor:
            return False
        by_id = {job.task_id: job for job in self.pending() if job.task_id is not None}
        # The cursor is saved with the jobs, so a restarted app reads on from it.
        feed = EventFeed(ContractChainSource(self.deployment.task), self.store.cursor)
        if by_id:
            events = feed.poll(up_to=head)
        else:
            events = []  # nothing to follow: skip the blocks unread
            feed.skip(up_to=head)
        moved = False
        for event in events:
            job = by_id.get(event.task_id)
            if job is not None:
                moved |= self._apply_event(job, event)
        self.store.cursor = feed.cursor
        self.store.save()
        return moved

    def _apply_event(self, job: Job, event: Any) -> bool:
        if isinstance(event, TaskSuccess) and job.phase in (JobPhase.CREATED, JobPhase.UPLOADED):
            job.result = "0x" + event.result.hex()
            job.result_node = event.result_node
            job.phase = JobPhase.SUCCEEDED
            job.succeeded_before_abort = True
        elif isinstance(event, TaskAborted) and not job.phase.finished:
            job.abort_reason = event.reason
            job.phase = JobPhase.ABORTED
        else:
            return False
        self.store.save()
        return True

    def _poll_task(self, job: Job) -> None:
        assert job.task_id is not None
        info = self.deployment.task.get_task(job.task_id)
        if not info.exists:
            # Deleted: settled or cancelled. Only the logs say which.
            for event in self.deployment.task.events_between(job.created_block or 0, self.chain.block_number):
                if event.task_id == job.task_id:
                    self._apply_event(job, event)
            return
        if info.aborted:
            job.abort_reason = AbortReason.ERROR_REPORTED if info.is_success else AbortReason.RESULT_ILLEGAL
            job.phase = JobPhase.ABORTED
            self.store.save()
        elif info.is_success and int(info.result_node, 16) != 0:
            job.result = "0x" + info.results[info.round_of(info.result_node)].hex()
            job.result_node = info.result_node
            job.phase = JobPhase.SUCCEEDED
            self.store.save()

    def _download_next(self, job: Job) -> None:
        assert job.task_id is not None
        if job.images_downloaded >= job.num_images:
            job.phase = JobPhase.COMPLETED
            self.store.save()
            return
        try:
            image = self.relay.download_result(self.account, job.task_id, job.images_downloaded)
        except (RelayNotReady, RelayUnavailable):
            return  # not uploaded yet, or the Relay is down: next step
        self.store.add_image(job.key, image)
        self.actions.append(Action(job.task_id, f"image {job.images_downloaded} downloaded", ActionKind.RELAY))
        job.images_downloaded += 1
        if job.images_downloaded >= job.num_images:
            job.phase = JobPhase.COMPLETED
        self.store.save()
        self._checkpoint("downloaded", job)

    def _maybe_cancel(self, job: Job) -> None:
        if self.auto_cancel and job.deadline is not None and self.chain.now() > job.deadline:
            self.cancel(job.key)

    def cancel(self, key: str) -> None:
        """Cancel the job's task on chain (allowed once its deadline has passed)."""
        job = self.store.jobs[key]
        if job.task_id is None:
            raise AppError(f"job {key} has no task on chain to cancel")
        if job.deadline is not None and self.chain.now() <= job.deadline:
            raise AppError(f"task {job.task_id} cannot be cancelled before its deadline {job.deadline} (chain time {self.chain.now()})")
        try:
            receipt = self.deployment.task.cancel(self.account, job.task_id)
        except RevertError as exc:
            if exc.reason == RevertReason.DEADLINE_NOT_EXCEEDED:
                # The owner raised the timeout after the task was created: read the truth.
                job.deadline = self.deployment.task.get_task(job.task_id).timeout
                self.store.save()
                return
            if exc.reason != RevertReason.TASK_NOT_EXIST:
                raise
            # Someone else settled or cancelled it: the logs tell the outcome.
            self._follow_events()
            return
        job.tx_hashes.append("0x" + bytes(receipt["transactionHash"]).hex())
        self.actions.append(Action(job.task_id, "cancel", ActionKind.CANCEL))
        for event in self.deployment.task.events(receipt):
            self._apply_event(job, event)
        if not job.phase.finished:
            job.phase = JobPhase.ABORTED
            job.abort_reason = job.abort_reason or AbortReason.CANCELLED
        self.store.save()

    # ------------------------------------------------------------ results

    def result(self, key: str) -> TaskResult:
        job = self.store.jobs[key]
        outcome = {
            JobPhase.COMPLETED: TaskOutcome.SUCCESS,
            JobPhase.ABORTED: TaskOutcome.ABORTED,
            JobPhase.FAILED: TaskOutcome.FAILED,
        }.get(job.phase, TaskOutcome.PENDING)
        self.ledger.sync()
        moves = self.ledger.for_task(job.task_id) if job.task_id is not None else []
        paid = sum(m.amount for m in moves if m.kind is MovementKind.ESCROW and m.sender == self.address)
        refunds = sum(m.amount for m in moves if m.kind is MovementKind.REFUND and m.receiver == self.address)
        return TaskResult(
            key=key,
            task_id=job.task_id,
            outcome=outcome,
            abort_reason=job.abort_reason,
            images=list(self.store.images.get(key, [])),
            result=bytes.fromhex(job.result[2:]) if job.result else b"",
            result_node=job.result_node,
            selected_nodes=list(job.selected_nodes),
            fees_paid=paid,
            refunds=refunds,
            tx_hashes=list(job.tx_hashes),
            error=job.error,
        )

    def run(
        self,
        args: TaskArgs | Mapping[str, Any] | str,
        key: str | None = None,
        *,
        idle: Callable[[], None] | None = None,
        max_steps: int = 100_000,
    ) -> TaskResult:
        """Submit a task and step until it finishes; `idle` runs between steps
        (by default a short sleep, for a real network that moves on its own)."""
        key = self.submit(args, key)
        wait = idle or (lambda: time.sleep(0.2))
        for _ in range(max_steps):
            if self.store.jobs[key].phase.finished:
                return self.result(key)
            self.step()
            if not self.store.jobs[key].phase.finished:
                wait()
        raise AppError(f"job {key} did not finish within {max_steps} steps (phase {self.store.jobs[key].phase.value})")
