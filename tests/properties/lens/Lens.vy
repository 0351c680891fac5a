# pragma version 0.4.3
"""
@title Lens
@notice A test-only view contract: it batches the views the property tests read
        after every step (balances, allowances, node statuses, node -> task
        bindings, counters and getTask of many ids) into one eth_call, which is
        about 40x cheaper than one web3 call per view. It only forwards views.
"""

interface IToken:
    def balanceOf(account: address) -> uint256: view
    def allowance(owner: address, spender: address) -> uint256: view
    def totalSupply() -> uint256: view

interface INode:
    def getNodeStatus(nodeAddress: address) -> uint256: view
    def availableNodes() -> uint256: view
    def totalNodes() -> uint256: view

interface ITask:
    def getNodeTask(nodeAddress: address) -> uint256: view
    def getTaskFee(taskId: uint256) -> uint256: view
    def totalTasks() -> uint256: view
    def totalSuccessTasks() -> uint256: view
    def totalAbortedTasks() -> uint256: view
    def taskFeePerNode() -> uint256: view
    def distanceThreshold() -> uint256: view
    def timeout() -> uint256: view

MAX_HOLDERS: constant(uint256) = 16
MAX_NODES: constant(uint256) = 8
MAX_TASKS: constant(uint256) = 16
TASK_INFO_SIZE: constant(uint256) = 1536  # getTask of a task with 80-byte results: 1504 bytes


struct Reading:
    balances: DynArray[uint256, MAX_HOLDERS]
    allowances: DynArray[uint256, MAX_HOLDERS]
    statuses: DynArray[uint256, MAX_NODES]
    nodeTasks: DynArray[uint256, MAX_NODES]
    counters: uint256[9]
    tasks: DynArray[Bytes[TASK_INFO_SIZE], MAX_TASKS]
    fees: DynArray[uint256, MAX_TASKS]


@external
@view
def read(
    token: IToken,
    node: INode,
    task: ITask,
    holders: DynArray[address, MAX_HOLDERS],
    owners: DynArray[address, MAX_HOLDERS],
    spenders: DynArray[address, MAX_HOLDERS],
    nodes: DynArray[address, MAX_NODES],
    taskIds: DynArray[uint256, MAX_TASKS],
) -> Reading:
    out: Reading = empty(Reading)
    for h: address in holders:
        out.balances.append(staticcall token.balanceOf(h))
    for i: uint256 in range(MAX_HOLDERS):
        if i >= len(owners):
            break
        out.allowances.append(staticcall token.allowance(owners[i], spenders[i]))
    for n: address in nodes:
        out.statuses.append(staticcall node.getNodeStatus(n))
        out.nodeTasks.append(staticcall task.getNodeTask(n))
    out.counters = [
        staticcall token.totalSupply(),
        staticcall node.totalNodes(),
        staticcall node.availableNodes(),
        staticcall task.totalTasks(),
        staticcall task.totalSuccessTasks(),
        staticcall task.totalAbortedTasks(),
        staticcall task.taskFeePerNode(),
        staticcall task.distanceThreshold(),
        staticcall task.timeout(),
    ]
    for taskId: uint256 in taskIds:
        raw: Bytes[TASK_INFO_SIZE] = raw_call(
            task.address,
            abi_encode(taskId, method_id=method_id("getTask(uint256)")),
            max_outsize=TASK_INFO_SIZE,
            is_static_call=True,
        )
        out.tasks.append(raw)
        out.fees.append(staticcall task.getTaskFee(taskId))
    return out
