"""The ghost ledger: an independent Python model of PROTOCOL.md sections 2.2, 2.3 and 3.

It is written from the protocol text, not from Task.vy, and predicts after every
transaction each party's CNX balance, each node's status, each task's state, the
node -> task binding and the counters. A call that the protocol says must revert
raises `Revert(reason)` *before* the model changes anything.

The one thing the model does not predict is which nodes `createTask` selects (that
is random on chain): the caller passes the selection read from the receipt, and the
model checks it was legal (3 distinct AVAILABLE nodes).

Where PROTOCOL.md leaves a detail open, the model's reading is stated in a comment
starting "Reading:" so a divergence can be judged against the text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydrogen_harness.protocol.constants import ERROR_COMMITMENT, STAKE_AMOUNT, ZERO_HASH, NodeStatus, commitment_of

__all__ = [
    "ABORT_CANCELLED",
    "ABORT_ERROR",
    "ABORT_ILLEGAL",
    "INFINITE",
    "Event",
    "Ledger",
    "ModelError",
    "Revert",
    "TaskState",
    "similar",
]

ZERO_ADDRESS = "0x" + "00" * 20
INFINITE = 2**256 - 1
ROUNDS = 3
MAX_NODES = 100_000

ABORT_ERROR = "Task error reported"
ABORT_ILLEGAL = "Task result illegal"
ABORT_CANCELLED = "Task Cancelled"

BUSY_STATES = (NodeStatus.BUSY, NodeStatus.PENDING_PAUSE, NodeStatus.PENDING_QUIT)


class Revert(Exception):
    """The protocol says this call reverts with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ModelError(AssertionError):
    """An input the protocol forbids (e.g. a selected node that was not AVAILABLE)."""


def similar(a: bytes, b: bytes, threshold: int) -> bool:
    """PROTOCOL.md 3: same length, a multiple of 8, every 8-byte word at Hamming
    distance strictly below the threshold. Two empty results are similar."""
    if len(a) != len(b) or len(a) % 8:
        return False
    for i in range(0, len(a), 8):
        x = int.from_bytes(a[i : i + 8], "big") ^ int.from_bytes(b[i : i + 8], "big")
        if bin(x).count("1") >= threshold:
            return False
    return True


@dataclass(frozen=True)
class Event:
    """A Task event the model expects, in the protocol's terms."""

    name: str  # TaskCreated, TaskResultCommitmentsReady, TaskSuccess, TaskAborted
    task_id: int
    detail: tuple[object, ...] = ()


@dataclass
class TaskState:
    id: int
    creator: str
    task_hash: bytes
    data_hash: bytes
    fee: int
    selected: tuple[str, str, str]
    timeout: int
    commitments: list[bytes] = field(default_factory=lambda: [ZERO_HASH] * ROUNDS)
    nonces: list[bytes] = field(default_factory=lambda: [ZERO_HASH] * ROUNDS)
    results: list[bytes] = field(default_factory=lambda: [b""] * ROUNDS)
    disclosed: list[int] = field(default_factory=list)
    is_success: bool = False
    aborted: bool = False
    result_node: str = ZERO_ADDRESS
    balance: int = 0
    exists: bool = True
    upload_reported: bool = False
    # Ledger of this task's escrow: balance + paid + refunded == 3 * fee, always.
    paid: int = 0
    refunded: int = 0
    abort_reason: str | None = None

    def round_of(self, node: str) -> int:
        return self.selected.index(node)

    @property
    def commitments_ready(self) -> bool:
        """Every round has a commitment (real or the error marker): disclosure may start."""
        return all(c != ZERO_HASH for c in self.commitments)

    def real_commitment(self, round_: int) -> bool:
        return self.commitments[round_] not in (ZERO_HASH, ERROR_COMMITMENT)


class Ledger:
    """The model. Addresses are checksummed strings; amounts are CNX units."""

    def __init__(
        self,
        *,
        owner: str,
        token: str,
        node_contract: str,
        task_contract: str,
        balances: dict[str, int],
        allowances: dict[tuple[str, str], int],
        nodes: list[str],
        fee: int,
        threshold: int,
        timeout: int,
        supply: int,
    ) -> None:
        self.owner = owner
        self.token = token
        self.node_contract = node_contract
        self.task_contract = task_contract
        self.balances = dict(balances)
        self.allowances = dict(allowances)
        self.status: dict[str, NodeStatus] = {n: NodeStatus.QUIT for n in nodes}
        self.node_task: dict[str, int] = {}
        self.tasks: dict[int, TaskState] = {}
        self.fee = fee
        self.threshold = threshold
        self.timeout = timeout
        self.supply = supply
        self.total_tasks = 0
        self.total_success = 0
        self.total_aborted = 0
        # What the last call did to the escrow and the nodes, e.g. ("pay", node):
        # read and cleared by the caller, to narrate a step.
        self.effects: list[tuple[str, str]] = []

    # ------------------------------------------------------------ token

    def _transfer(self, sender: str, to: str, amount: int) -> None:
        if self.balances[sender] < amount:
            raise ModelError(f"model transfer of {amount} from {sender} exceeds its balance {self.balances[sender]}")
        self.balances[sender] -= amount
        self.balances[to] += amount

    def _transfer_from(self, owner: str, spender: str, amount: int) -> None:
        allowance = self.allowances.get((owner, spender), 0)
        if allowance != INFINITE:
            self.allowances[(owner, spender)] = allowance - amount
        self._transfer(owner, spender, amount)

    # ------------------------------------------------------------ node registry (2.2)

    @property
    def total_nodes(self) -> int:
        return sum(1 for s in self.status.values() if s != NodeStatus.QUIT)

    @property
    def available_nodes(self) -> int:
        return sum(1 for s in self.status.values() if s == NodeStatus.AVAILABLE)

    def join(self, node: str) -> None:
        if self.total_nodes >= MAX_NODES:
            raise Revert("Network is full")
        if self.status[node] != NodeStatus.QUIT:
            raise Revert("Node already joined")
        if self.allowances.get((node, self.node_contract), 0) < STAKE_AMOUNT:
            raise Revert("Not enough allowance to stake")
        if self.balances[node] < STAKE_AMOUNT:
            raise Revert("Not enough token to stake")
        self._transfer_from(node, self.node_contract, STAKE_AMOUNT)
        self.status[node] = NodeStatus.AVAILABLE

    def quit(self, node: str) -> None:
        status = self.status[node]
        if status in (NodeStatus.AVAILABLE, NodeStatus.PAUSED):
            self.status[node] = NodeStatus.QUIT
            self._transfer(self.node_contract, node, STAKE_AMOUNT)
        elif status == NodeStatus.BUSY:
            self.status[node] = NodeStatus.PENDING_QUIT
        else:
            raise Revert("Illegal node status")

    def pause(self, node: str) -> None:
        status = self.status[node]
        if status == NodeStatus.AVAILABLE:
            self.status[node] = NodeStatus.PAUSED
        elif status == NodeStatus.BUSY:
            self.status[node] = NodeStatus.PENDING_PAUSE
        else:
            raise Revert("Illegal node status")

    def resume(self, node: str) -> None:
        if self.status[node] != NodeStatus.PAUSED:
            raise Revert("Illegal node status")
        self.status[node] = NodeStatus.AVAILABLE

    def _finish(self, node: str) -> None:
        """Node.finishTask."""
        status = self.status[node]
        if status == NodeStatus.BUSY:
            self.status[node] = NodeStatus.AVAILABLE
        elif status == NodeStatus.PENDING_PAUSE:
            self.status[node] = NodeStatus.PAUSED
        elif status == NodeStatus.PENDING_QUIT:
            self.status[node] = NodeStatus.QUIT
            self._transfer(self.node_contract, node, STAKE_AMOUNT)
        else:
            raise ModelError(f"finishTask on {node} in status {status.name}")

    # ------------------------------------------------------------ owner settings

    def _only_owner(self, sender: str) -> None:
        if sender != self.owner:
            raise Revert("Ownable: caller is not the owner")

    def set_fee(self, sender: str, fee: int) -> None:
        self._only_owner(sender)
        self.fee = fee

    def set_threshold(self, sender: str, threshold: int) -> None:
        self._only_owner(sender)
        self.threshold = threshold

    def set_timeout(self, sender: str, seconds: int) -> None:
        self._only_owner(sender)
        self.timeout = seconds

    # ------------------------------------------------------------ task lifecycle (2.3, 3)

    def live(self, task_id: int) -> TaskState | None:
        task = self.tasks.get(task_id)
        return task if task is not None and task.exists else None

    def _task(self, task_id: int) -> TaskState:
        task = self.live(task_id)
        if task is None:
            raise Revert("Task not exist")
        return task

    def _task_round(self, task_id: int, round_: int, sender: str) -> TaskState:
        task = self._task(task_id)
        if round_ >= ROUNDS:
            raise Revert("Round not exist")
        if task.selected[round_] != sender:
            raise Revert("Not selected node")
        return task

    def check_create(self, app: str) -> None:
        """The reverts of createTask that come before node selection."""
        cost = 3 * self.fee
        if self.balances[app] < cost:
            raise Revert("Not enough tokens for task")
        if self.allowances.get((app, self.task_contract), 0) < cost:
            raise Revert("Not enough allowance for task")
        if self.available_nodes < 3:
            raise Revert("Not enough nodes")

    def create_task(
        self, app: str, task_hash: bytes, data_hash: bytes, selected: tuple[str, str, str], block_timestamp: int
    ) -> list[Event]:
        self.check_create(app)
        if len(set(selected)) != 3:
            raise ModelError(f"createTask selected the same node twice: {selected}")
        for node in selected:
            if self.status.get(node) != NodeStatus.AVAILABLE:
                raise ModelError(f"createTask selected {node}, whose status is {self.status.get(node)!r}, not AVAILABLE")
        fee = self.fee
        self._transfer_from(app, self.task_contract, 3 * fee)
        self.total_tasks += 1
        task = TaskState(
            id=self.total_tasks,
            creator=app,
            task_hash=task_hash,
            data_hash=data_hash,
            fee=fee,
            selected=selected,
            timeout=block_timestamp + self.timeout,
            balance=3 * fee,
        )
        self.tasks[task.id] = task
        for node in selected:
            self.status[node] = NodeStatus.BUSY
            self.node_task[node] = task.id
        return [Event("TaskCreated", task.id, (app, node, task_hash, data_hash, r)) for r, node in enumerate(selected)]

    def _ready_event(self, task: TaskState) -> list[Event]:
        errors = sum(1 for c in task.commitments if c == ERROR_COMMITMENT)
        if task.commitments_ready and errors <= 1:
            return [Event("TaskResultCommitmentsReady", task.id)]
        return []

    def commit(self, sender: str, task_id: int, round_: int, commitment: bytes, nonce: bytes) -> list[Event]:
        task = self._task_round(task_id, round_, sender)
        if task.commitments[round_] != ZERO_HASH:
            raise Revert("Already submitted")
        if task.aborted:
            raise Revert("Task is aborted")
        if nonce in task.nonces:  # unset nonces are zero, so a zero nonce always lands here
            raise Revert("Nonce already used")
        task.commitments[round_] = commitment
        task.nonces[round_] = nonce
        return self._ready_event(task)

    def report_error(self, sender: str, task_id: int, round_: int) -> list[Event]:
        task = self._task_round(task_id, round_, sender)
        if task.commitments[round_] != ZERO_HASH:
            raise Revert("Already submitted")
        task.commitments[round_] = ERROR_COMMITMENT
        task.results[round_] = b""
        task.disclosed.append(round_)
        events = self._ready_event(task)
        return events + self._settle(task)

    def disclose(self, sender: str, task_id: int, round_: int, result: bytes) -> list[Event]:
        if not result:
            raise Revert("Invalid result")
        task = self._task_round(task_id, round_, sender)
        # Reading: "Already submitted" = this round's result was disclosed already.
        if round_ in task.disclosed:
            raise Revert("Already submitted")
        if not task.commitments_ready:
            raise Revert("Commitments not ready")
        if task.aborted:
            raise Revert("Task is aborted")
        if commitment_of(result, task.nonces[round_]) != task.commitments[round_]:
            raise Revert("Mismatch result and commitment")
        task.results[round_] = result
        task.disclosed.append(round_)
        return self._settle(task)

    def report_uploaded(self, sender: str, task_id: int, round_: int) -> list[Event]:
        task = self._task_round(task_id, round_, sender)
        if task.result_node != sender:
            raise Revert("Not result round")
        if task.aborted:
            raise Revert("Task is aborted")
        if task.upload_reported:
            raise Revert("Results already reported")
        task.upload_reported = True
        self._pay(task, sender)
        self._try_delete(task)
        return []

    def cancel(self, sender: str, task_id: int, block_timestamp: int) -> list[Event]:
        task = self._task(task_id)
        if sender != task.creator and sender not in task.selected:
            raise Revert("Unauthorized to cancel task")
        if block_timestamp <= task.timeout:
            raise Revert("Task has not exceeded the deadline yet")
        events = []
        self._refund(task, task.balance)
        if not task.aborted:
            events.append(Event("TaskAborted", task.id, (ABORT_CANCELLED,)))
            task.aborted = True
            task.abort_reason = ABORT_CANCELLED
        for node in task.selected:
            # Deviation 2: only nodes still bound to *this* task are freed.
            if self.node_task.get(node) == task.id:
                self._release(task, node)
                self.effects.append(("free unpaid", node))
        self._delete(task)
        return events

    # ------------------------------------------------------------ settlement (3)

    def _release(self, task: TaskState, node: str) -> None:
        if self.node_task.get(node) != task.id:
            raise ModelError(f"releasing {node} from task {task.id}, but it is bound to {self.node_task.get(node)}")
        del self.node_task[node]
        self._finish(node)

    def _pay(self, task: TaskState, node: str) -> None:
        """Pay one fee (the task's own fee: deviation 3) and free the node."""
        task.balance -= task.fee
        task.paid += task.fee
        self._transfer(self.task_contract, node, task.fee)
        self.effects.append(("pay", node))
        self._release(task, node)

    def _refund(self, task: TaskState, amount: int) -> None:
        task.balance -= amount
        task.refunded += amount
        self._transfer(self.task_contract, task.creator, amount)
        if amount:
            self.effects.append(("refund", task.creator))

    def _slash(self, task: TaskState, node: str) -> None:
        """The node's fee goes back to the creator, its stake to the Node owner; it is out."""
        if self.status[node] not in BUSY_STATES:
            raise ModelError(f"slashing {node} in status {self.status[node].name}")
        noted = len(self.effects)
        self._refund(task, task.fee)
        del self.effects[noted:]  # the refund of its fee is part of the slash
        if self.node_task.get(node) == task.id:
            del self.node_task[node]
        self.status[node] = NodeStatus.QUIT
        self._transfer(self.node_contract, self.owner, STAKE_AMOUNT)
        self.effects.append(("slash", node))

    def _succeed(self, task: TaskState, round_: int) -> list[Event]:
        node = task.selected[round_]
        task.is_success = True
        task.result_node = node
        # Reading: totalSuccessTasks counts the tasks that emitted TaskSuccess.
        self.total_success += 1
        return [Event("TaskSuccess", task.id, (task.results[round_], node))]

    def _settle(self, task: TaskState) -> list[Event]:
        d = task.disclosed
        result = [task.results[r] for r in d]
        node = [task.selected[r] for r in d]
        events: list[Event] = []
        if len(d) == 2:
            if similar(result[0], result[1], self.threshold):
                task.is_success = True
                self._pay(task, node[1])
                if result[0]:
                    self._branch("|d|=2 similar: success")
                    events += self._succeed(task, d[0])
                else:  # two error reports: the app is to blame
                    self._branch("|d|=2 two error reports: abort")
                    self._pay(task, node[0])
                    events.append(Event("TaskAborted", task.id, (ABORT_ERROR,)))
                    task.aborted = True
                    task.abort_reason = ABORT_ERROR
                    self.total_aborted += 1
                    for r in range(ROUNDS):
                        if task.real_commitment(r):
                            self._slash(task, task.selected[r])
        elif len(d) == 3:
            if task.is_success:
                if similar(result[0], result[2], self.threshold):
                    self._branch("|d|=3 after success: d2 similar, paid")
                    self._pay(task, node[2])
                else:
                    self._branch("|d|=3 after success: d2 not similar, slashed")
                    self._slash(task, node[2])
            elif similar(result[0], result[2], self.threshold):
                self._branch("|d|=3 d0~d2: success, d1 slashed")
                self._pay(task, node[2])
                self._slash(task, node[1])
                events += self._succeed(task, d[0])
            elif similar(result[1], result[2], self.threshold):
                self._branch("|d|=3 d1~d2: success, d0 slashed")
                self._pay(task, node[2])
                self._slash(task, node[0])
                events += self._succeed(task, d[1])
            else:
                self._branch("|d|=3 no two similar: illegal")
                self._refund(task, task.balance)
                for n in node:
                    self._release(task, n)
                    self.effects.append(("free unpaid", n))
                events.append(Event("TaskAborted", task.id, (ABORT_ILLEGAL,)))
                task.aborted = True
                task.abort_reason = ABORT_ILLEGAL
                self.total_aborted += 1
        self._try_delete(task)
        return events

    def _branch(self, name: str) -> None:
        self.effects.append(("branch", name))

    def _try_delete(self, task: TaskState) -> None:
        # Reading: a task is deleted as soon as no selected node is bound to it any more
        # (every selected node paid, slashed or freed), as 2.3 says for reportResultsUploaded.
        if task.exists and not any(self.node_task.get(n) == task.id for n in task.selected):
            self._delete(task)

    def _delete(self, task: TaskState) -> None:
        if task.balance != 0:
            raise ModelError(f"task {task.id} deleted with {task.balance} still in escrow")
        task.exists = False
        self.effects.append(("delete task", str(task.id)))

    # ------------------------------------------------------------ model self-checks

    def self_check(self) -> None:
        """The conservation laws of PROTOCOL.md 3, on the model itself."""
        if sum(self.balances.values()) != self.supply:
            raise ModelError("model balances do not add up to the supply")
        for task in self.tasks.values():
            if task.balance + task.paid + task.refunded != 3 * task.fee:
                raise ModelError(f"task {task.id}: escrow {task.balance} + paid {task.paid} + refunded {task.refunded} != 3f")
        live = sum(t.balance for t in self.tasks.values() if t.exists)
        if self.balances[self.task_contract] != live:
            raise ModelError("model Task balance != sum of live escrows")
        if self.balances[self.node_contract] != STAKE_AMOUNT * self.total_nodes:
            raise ModelError("model Node balance != 400 CNX x joined nodes")
        for node, task_id in self.node_task.items():
            task = self.live(task_id)
            if task is None or node not in task.selected or self.status[node] not in BUSY_STATES:
                raise ModelError(f"{node} bound to task {task_id} inconsistently")
        for node, status in self.status.items():
            if status in BUSY_STATES and node not in self.node_task:
                raise ModelError(f"{node} is {status.name} but bound to no task")
