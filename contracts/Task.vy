# pragma version 0.4.3
"""
@title Task
@notice The task escrow of the Hydrogen Network, ABI-compatible with H-net's Task
        contract: an application pays 3 fees, 3 nodes are picked at random, they
        commit and disclose results, and the escrow is settled by PROTOCOL.md 3.
@dev Deliberate deviations from H-net (PROTOCOL.md 2.5):
     1. nodes are picked uniformly in constant gas from Node's dense list of
        available nodes (H-net probed linearly from a random index);
     2. cancelTask frees a node, and waits for it, only while the node is bound
        to *this* task (nodeTasks[node] == taskId);
     3. a task keeps the fee it was created with for all its payments;
     4. a second reportResultsUploaded reverts "Results already reported";
     5. createTask reverts "Not enough gas for task" unless the gas left after its
        view checks covers its most expensive selection (CREATE_TASK_GAS_NEEDED),
        so that a gas estimate made in any block is enough in any later block.
"""

from ethereum.ercs import IERC20
import ownable

initializes: ownable

exports: (ownable.owner, ownable.transferOwnership, ownable.renounceOwnership)


interface INode:
    def startTask(nodeAddress: address): nonpayable
    def finishTask(nodeAddress: address): nonpayable
    def slash(nodeAddress: address): nonpayable
    def availableNodes() -> uint256: view
    def getAvailableNodeAt(index: uint256) -> address: view


MAX_RESULT: constant(uint256) = 80  # 10 images x 8-byte perceptual hash
ROUNDS: constant(uint256) = 3
ERROR_COMMITMENT: constant(bytes32) = 0x0000000000000000000000000000000000000000000000000000000000000001
# Deviation 5: the gas createTask must have left after its three view checks.
# The rest of it costs a different amount depending on which nodes are picked,
# and the pick depends on the parent block's hash: each pick that is not the
# last entry of Node's available list moves that entry (swap-and-pop, about
# 10,000 gas more), and refunds do not lower the gas needed while it runs. A gas
# estimate (eth_estimateGas: a binary search for the lowest limit that succeeds,
# no margin) made in one block could be too low for the pick of the block the
# transaction lands in, and it ran out of gas. Asserting the worst case here
# makes every limit that succeeds at all, an estimate included, enough for any
# pick in any block.
# Worst case, measured on the prague schedule: 567,807 gas from this check to
# the end, for the first task ever (totalTasks and Task's token balance go from
# zero to non-zero), a finite allowance (its update and the Approval log),
# non-zero taskHash and dataHash, and three picks that each move a different,
# untouched entry; picks that move nothing cost about 30,000 less. The calls to
# Node and the token always run with far more gas than they need, so the 63/64
# rule adds nothing (the lowest limit that succeeds is the gas used plus the
# refunds). 640,000 adds 72,193 (13%) for gas schedules that price storage or
# calls higher. A limit that passes this check is about 681,000 gas (21,000
# intrinsic, ~1,000 calldata, ~19,500 up to here): far below the 60M block
# limit and the 1.5M the harness sends.
CREATE_TASK_GAS_NEEDED: constant(uint256) = 640_000


struct TaskInfo:
    id: uint256
    creator: address
    taskHash: bytes32
    dataHash: bytes32
    isSuccess: bool
    selectedNodes: DynArray[address, ROUNDS]
    commitments: DynArray[bytes32, ROUNDS]
    nonces: DynArray[bytes32, ROUNDS]
    results: DynArray[Bytes[MAX_RESULT], ROUNDS]
    resultDisclosedRounds: DynArray[uint256, ROUNDS]
    resultNode: address
    aborted: bool
    timeout: uint256
    balance: uint256


event TaskCreated:
    taskId: uint256
    creator: indexed(address)
    selectedNode: indexed(address)
    taskHash: bytes32
    dataHash: bytes32
    round: uint256

event TaskResultCommitmentsReady:
    taskId: uint256

event TaskSuccess:
    taskId: uint256
    result: Bytes[MAX_RESULT]
    resultNode: indexed(address)

event TaskAborted:
    taskId: uint256
    reason: String[32]


node: public(INode)
token: public(IERC20)

taskFeePerNode: public(uint256)
distanceThreshold: public(uint256)
timeout: public(uint256)

totalTasks: public(uint256)
totalSuccessTasks: public(uint256)
totalAbortedTasks: public(uint256)

nextTaskId: uint256
tasks: HashMap[uint256, TaskInfo]
nodeTasks: HashMap[address, uint256]
# Deviation 3: the fee each task was created with.
taskFees: HashMap[uint256, uint256]
# Bit r set once round r's node is settled (paid, slashed or freed).
settledRounds: HashMap[uint256, uint256]


@deploy
def __init__(node: INode, token: IERC20):
    ownable.__init__()
    self.node = node
    self.token = token
    self.taskFeePerNode = 10 * 10**18
    self.distanceThreshold = 5
    self.timeout = 15 * 60
    self.nextTaskId = 1


# ---------------------------------------------------------------- owner settings

@external
def updateTaskFeePerNode(taskFee: uint256):
    ownable._check_owner()
    self.taskFeePerNode = taskFee


@external
def updateDistanceThreshold(threshold: uint256):
    ownable._check_owner()
    self.distanceThreshold = threshold


@external
def updateTimeout(t: uint256):
    ownable._check_owner()
    self.timeout = t


# ---------------------------------------------------------------- selection

@internal
@view
def _seed(taskHash: bytes32, dataHash: bytes32, round: uint256) -> uint256:
    # prevrandao is 0 on the in-memory EVM, so the parent hash is mixed in too.
    return convert(keccak256(abi_encode(block.prevrandao, blockhash(block.number - 1), taskHash, dataHash, round)), uint256)


@external
@view
def getSelectedNode(taskHash: bytes32, dataHash: bytes32, round: uint256) -> address:
    """
    @notice The node createTask would pick for `round` if it ran in this block:
            it replays the earlier rounds' swap-and-pop removals in memory.
    """
    assert round < ROUNDS, "Round not exist"
    count: uint256 = staticcall self.node.availableNodes()
    assert count >= ROUNDS, "Not enough nodes"
    moved_from: DynArray[uint256, ROUNDS] = []
    moved_to: DynArray[uint256, ROUNDS] = []
    picked: address = empty(address)
    for r: uint256 in range(ROUNDS):
        index: uint256 = self._seed(taskHash, dataHash, r) % count
        picked = self._list_at(index, moved_from, moved_to)
        if r == round:
            break
        # Node.startTask moves the last available node into the picked slot.
        last: uint256 = count - 1
        moved_from.append(last)
        moved_to.append(index)
        count = last
    return picked


@internal
@view
def _list_at(index: uint256, moved_from: DynArray[uint256, ROUNDS], moved_to: DynArray[uint256, ROUNDS]) -> address:
    # Undo the simulated moves, latest first, to find the slot's current node.
    slot: uint256 = index
    n: uint256 = len(moved_to)
    for k: uint256 in range(ROUNDS):
        if k >= n:
            break
        j: uint256 = n - 1 - k
        if slot == moved_to[j]:
            slot = moved_from[j]
    return staticcall self.node.getAvailableNodeAt(slot)


@internal
def _select_node(taskHash: bytes32, dataHash: bytes32, round: uint256) -> address:
    count: uint256 = staticcall self.node.availableNodes()
    picked: address = staticcall self.node.getAvailableNodeAt(self._seed(taskHash, dataHash, round) % count)
    extcall self.node.startTask(picked)
    return picked


# ---------------------------------------------------------------- similarity

@internal
@pure
def _popcount64(x: uint256) -> uint256:
    v: uint256 = x - ((x >> 1) & 6148914691236517205)
    v = (v & 3689348814741910323) + ((v >> 2) & 3689348814741910323)
    v = (v + (v >> 4)) & 1085102592571150095
    return ((v * 72340172838076673) >> 56) & 255


@internal
@view
def _similar(a: Bytes[MAX_RESULT], b: Bytes[MAX_RESULT]) -> bool:
    if len(a) != len(b) or len(a) % 8 != 0:
        return False
    threshold: uint256 = self.distanceThreshold
    for i: uint256 in range(MAX_RESULT // 8):
        if i * 8 >= len(a):
            break
        x: uint256 = convert(convert(slice(a, i * 8, 8), bytes8), uint256)
        y: uint256 = convert(convert(slice(b, i * 8, 8), bytes8), uint256)
        if self._popcount64(x ^ y) >= threshold:
            return False
    return True


# ---------------------------------------------------------------- settlement

@internal
def _mark_settled(taskId: uint256, round: uint256):
    self.settledRounds[taskId] |= 1 << round


@internal
def _release(taskId: uint256, round: uint256):
    # Frees the node only if it is still bound to this task (deviation 2).
    nodeAddress: address = self.tasks[taskId].selectedNodes[round]
    if self.nodeTasks[nodeAddress] == taskId:
        self.nodeTasks[nodeAddress] = 0
        extcall self.node.finishTask(nodeAddress)
    self._mark_settled(taskId, round)


@internal
def _pay(taskId: uint256, round: uint256):
    fee: uint256 = self.taskFees[taskId]
    self.tasks[taskId].balance -= fee
    assert extcall self.token.transfer(self.tasks[taskId].selectedNodes[round], fee), "Token transfer failed"
    self._release(taskId, round)


@internal
def _refund(taskId: uint256, amount: uint256):
    self.tasks[taskId].balance -= amount
    assert extcall self.token.transfer(self.tasks[taskId].creator, amount), "Token transfer failed"


@internal
def _slash(taskId: uint256, round: uint256):
    # The cheater's fee goes back to the creator; Node sends its stake to the owner.
    nodeAddress: address = self.tasks[taskId].selectedNodes[round]
    self._refund(taskId, self.taskFees[taskId])
    if self.nodeTasks[nodeAddress] == taskId:
        self.nodeTasks[nodeAddress] = 0
    extcall self.node.slash(nodeAddress)
    self._mark_settled(taskId, round)


@internal
def _succeed(taskId: uint256, round: uint256):
    self.tasks[taskId].isSuccess = True
    nodeAddress: address = self.tasks[taskId].selectedNodes[round]
    self.tasks[taskId].resultNode = nodeAddress
    self.totalSuccessTasks += 1
    log TaskSuccess(taskId=taskId, result=self.tasks[taskId].results[round], resultNode=nodeAddress)


@internal
def _delete_if_settled(taskId: uint256):
    if self.settledRounds[taskId] == 7:
        self._delete(taskId)


@internal
def _delete(taskId: uint256):
    self.tasks[taskId] = empty(TaskInfo)
    self.taskFees[taskId] = 0
    self.settledRounds[taskId] = 0


@internal
def _settle(taskId: uint256):
    rounds: DynArray[uint256, ROUNDS] = self.tasks[taskId].resultDisclosedRounds
    if len(rounds) == 2:
        r0: uint256 = rounds[0]
        r1: uint256 = rounds[1]
        if self._similar(self.tasks[taskId].results[r0], self.tasks[taskId].results[r1]):
            self.tasks[taskId].isSuccess = True
            self._pay(taskId, r1)
            if len(self.tasks[taskId].results[r0]) > 0:
                self._succeed(taskId, r0)
            else:
                # Two error reports: the app is to blame.
                self._pay(taskId, r0)
                self.tasks[taskId].aborted = True
                self.totalAbortedTasks += 1
                log TaskAborted(taskId=taskId, reason="Task error reported")
                for r: uint256 in range(ROUNDS):
                    c: bytes32 = self.tasks[taskId].commitments[r]
                    if c != empty(bytes32) and c != ERROR_COMMITMENT:
                        self._slash(taskId, r)
    elif len(rounds) == 3:
        r0: uint256 = rounds[0]
        r1: uint256 = rounds[1]
        r2: uint256 = rounds[2]
        result0: Bytes[MAX_RESULT] = self.tasks[taskId].results[r0]
        result2: Bytes[MAX_RESULT] = self.tasks[taskId].results[r2]
        if self.tasks[taskId].isSuccess:
            if self._similar(result0, result2):
                self._pay(taskId, r2)
            else:
                self._slash(taskId, r2)
        elif self._similar(result0, result2):
            self._pay(taskId, r2)
            self._slash(taskId, r1)
            self._succeed(taskId, r0)
        elif self._similar(self.tasks[taskId].results[r1], result2):
            self._pay(taskId, r2)
            self._slash(taskId, r0)
            self._succeed(taskId, r1)
        else:
            self._refund(taskId, self.tasks[taskId].balance)
            for r: uint256 in range(ROUNDS):
                self._release(taskId, r)
            self.tasks[taskId].aborted = True
            self.totalAbortedTasks += 1
            log TaskAborted(taskId=taskId, reason="Task result illegal")
    self._delete_if_settled(taskId)


@internal
def _check_commitments_ready(taskId: uint256):
    errors: uint256 = 0
    for c: bytes32 in self.tasks[taskId].commitments:
        if c == empty(bytes32):
            return
        if c == ERROR_COMMITMENT:
            errors += 1
    if errors <= 1:
        log TaskResultCommitmentsReady(taskId=taskId)


@internal
@view
def _check_task_round(taskId: uint256, round: uint256):
    assert self.tasks[taskId].id != 0, "Task not exist"
    assert round < ROUNDS, "Round not exist"
    assert self.tasks[taskId].selectedNodes[round] == msg.sender, "Not selected node"


# ---------------------------------------------------------------- task lifecycle

@external
def createTask(taskHash: bytes32, dataHash: bytes32):
    fee: uint256 = self.taskFeePerNode
    total: uint256 = fee * ROUNDS
    assert staticcall self.token.balanceOf(msg.sender) >= total, "Not enough tokens for task"
    assert staticcall self.token.allowance(msg.sender, self) >= total, "Not enough allowance for task"
    assert staticcall self.node.availableNodes() >= ROUNDS, "Not enough nodes"
    # Deviation 5. After the view checks, so their reverts come first whatever the
    # gas limit; the gas spent up to here does not depend on the pick or the state.
    assert msg.gas >= CREATE_TASK_GAS_NEEDED, "Not enough gas for task"
    assert extcall self.token.transferFrom(msg.sender, self, total), "Task fee payment failed"

    taskId: uint256 = self.nextTaskId
    self.nextTaskId = taskId + 1
    self.totalTasks += 1

    selected: DynArray[address, ROUNDS] = []
    for r: uint256 in range(ROUNDS):
        picked: address = self._select_node(taskHash, dataHash, r)
        self.nodeTasks[picked] = taskId
        selected.append(picked)

    zero: bytes32 = empty(bytes32)
    self.tasks[taskId] = TaskInfo(
        id=taskId,
        creator=msg.sender,
        taskHash=taskHash,
        dataHash=dataHash,
        isSuccess=False,
        selectedNodes=selected,
        commitments=[zero, zero, zero],
        nonces=[zero, zero, zero],
        results=[b"", b"", b""],
        resultDisclosedRounds=[],
        resultNode=empty(address),
        aborted=False,
        timeout=block.timestamp + self.timeout,
        balance=total,
    )
    self.taskFees[taskId] = fee

    for r: uint256 in range(ROUNDS):
        log TaskCreated(taskId=taskId, creator=msg.sender, selectedNode=selected[r], taskHash=taskHash, dataHash=dataHash, round=r)


@external
def submitTaskResultCommitment(taskId: uint256, round: uint256, commitment: bytes32, nonce: bytes32):
    self._check_task_round(taskId, round)
    assert self.tasks[taskId].commitments[round] == empty(bytes32), "Already submitted"
    assert not self.tasks[taskId].aborted, "Task is aborted"
    # Unset nonces are zero, so a zero nonce is always "used".
    assert nonce not in self.tasks[taskId].nonces, "Nonce already used"
    self.tasks[taskId].commitments[round] = commitment
    self.tasks[taskId].nonces[round] = nonce
    self._check_commitments_ready(taskId)


@external
def discloseTaskResult(taskId: uint256, round: uint256, result: Bytes[MAX_RESULT]):
    assert len(result) > 0, "Invalid result"
    self._check_task_round(taskId, round)
    assert len(self.tasks[taskId].results[round]) == 0, "Already submitted"
    for c: bytes32 in self.tasks[taskId].commitments:
        assert c != empty(bytes32), "Commitments not ready"
    assert not self.tasks[taskId].aborted, "Task is aborted"
    assert keccak256(concat(result, self.tasks[taskId].nonces[round])) == self.tasks[taskId].commitments[round], "Mismatch result and commitment"
    self.tasks[taskId].results[round] = result
    self.tasks[taskId].resultDisclosedRounds.append(round)
    self._settle(taskId)


@external
def reportTaskError(taskId: uint256, round: uint256):
    self._check_task_round(taskId, round)
    assert self.tasks[taskId].commitments[round] == empty(bytes32), "Already submitted"
    self.tasks[taskId].commitments[round] = ERROR_COMMITMENT
    self.tasks[taskId].resultDisclosedRounds.append(round)
    self._check_commitments_ready(taskId)
    self._settle(taskId)


@external
def reportResultsUploaded(taskId: uint256, round: uint256):
    self._check_task_round(taskId, round)
    assert self.tasks[taskId].resultNode == msg.sender, "Not result round"
    assert not self.tasks[taskId].aborted, "Task is aborted"
    assert self.settledRounds[taskId] & (1 << round) == 0, "Results already reported"
    self._pay(taskId, round)
    self._delete_if_settled(taskId)


@external
def cancelTask(taskId: uint256):
    assert self.tasks[taskId].id != 0, "Task not exist"
    creator: address = self.tasks[taskId].creator
    selected: DynArray[address, ROUNDS] = self.tasks[taskId].selectedNodes
    assert msg.sender == creator or msg.sender in selected, "Unauthorized to cancel task"
    assert block.timestamp > self.tasks[taskId].timeout, "Task has not exceeded the deadline yet"
    remaining: uint256 = self.tasks[taskId].balance
    if remaining > 0:
        self._refund(taskId, remaining)
    if not self.tasks[taskId].aborted:
        log TaskAborted(taskId=taskId, reason="Task Cancelled")
    settled: uint256 = self.settledRounds[taskId]
    for r: uint256 in range(ROUNDS):
        if settled & (1 << r) == 0:
            self._release(taskId, r)
    self._delete(taskId)


# ---------------------------------------------------------------- views

@external
@view
def getTask(taskId: uint256) -> TaskInfo:
    return self.tasks[taskId]


@external
@view
def getNodeTask(nodeAddress: address) -> uint256:
    return self.nodeTasks[nodeAddress]


@external
@view
def getTaskFee(taskId: uint256) -> uint256:
    """@notice Our addition: the fee per node this task was created with (deviation 3)."""
    return self.taskFees[taskId]
