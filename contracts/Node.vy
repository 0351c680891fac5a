# pragma version 0.4.3
"""
@title Node
@notice The registry of GPU nodes and their 400 CNX stakes, ABI-compatible with
        H-net's Node contract. Available nodes are kept in a dense array with
        swap-and-pop removal, so the Task contract can pick one uniformly in
        constant gas (PROTOCOL.md 2.4) instead of H-net's linear probe.
"""

from ethereum.ercs import IERC20
import ownable

initializes: ownable

exports: (ownable.owner, ownable.transferOwnership, ownable.renounceOwnership)

NODE_STATUS_QUIT: constant(uint256) = 0
NODE_STATUS_AVAILABLE: constant(uint256) = 1
NODE_STATUS_BUSY: constant(uint256) = 2
NODE_STATUS_PENDING_PAUSE: constant(uint256) = 3
NODE_STATUS_PENDING_QUIT: constant(uint256) = 4
NODE_STATUS_PAUSED: constant(uint256) = 5

MAX_NODES: constant(uint256) = 100_000
STAKE_AMOUNT: constant(uint256) = 400 * 10**18

token: public(IERC20)
taskContract: public(address)
totalNodes: public(uint256)
availableNodes: public(uint256)

nodeStatus: HashMap[address, uint256]
# Dense array of AVAILABLE nodes (indices 0..availableNodes-1) and each node's
# index in it plus one (0 means absent).
availableList: HashMap[uint256, address]
availableIndex: HashMap[address, uint256]


@deploy
def __init__(token: IERC20):
    ownable.__init__()
    self.token = token


@internal
def _only_task_contract():
    assert msg.sender == self.taskContract, "Not called by the task contract"


@internal
def _add_available(node: address):
    index: uint256 = self.availableNodes
    self.availableList[index] = node
    self.availableIndex[node] = index + 1
    self.availableNodes = index + 1


@internal
def _remove_available(node: address):
    index: uint256 = self.availableIndex[node] - 1
    last_index: uint256 = self.availableNodes - 1
    if index != last_index:
        last: address = self.availableList[last_index]
        self.availableList[index] = last
        self.availableIndex[last] = index + 1
    self.availableList[last_index] = empty(address)
    self.availableIndex[node] = 0
    self.availableNodes = last_index


@internal
def _remove_node(node: address):
    self.nodeStatus[node] = NODE_STATUS_QUIT
    self.totalNodes -= 1


@internal
def _return_stake(node: address):
    assert extcall self.token.transfer(node, STAKE_AMOUNT), "Token transfer failed"


@external
def join():
    assert self.totalNodes < MAX_NODES, "Network is full"
    assert self.nodeStatus[msg.sender] == NODE_STATUS_QUIT, "Node already joined"
    assert staticcall self.token.allowance(msg.sender, self) >= STAKE_AMOUNT, "Not enough allowance to stake"
    assert staticcall self.token.balanceOf(msg.sender) >= STAKE_AMOUNT, "Not enough token to stake"
    assert extcall self.token.transferFrom(msg.sender, self, STAKE_AMOUNT), "Token transfer failed"
    self.nodeStatus[msg.sender] = NODE_STATUS_AVAILABLE
    self.totalNodes += 1
    self._add_available(msg.sender)


@external
def quit():
    status: uint256 = self.nodeStatus[msg.sender]
    if status == NODE_STATUS_AVAILABLE:
        self._remove_available(msg.sender)
        self._remove_node(msg.sender)
        self._return_stake(msg.sender)
    elif status == NODE_STATUS_PAUSED:
        self._remove_node(msg.sender)
        self._return_stake(msg.sender)
    elif status == NODE_STATUS_BUSY:
        self.nodeStatus[msg.sender] = NODE_STATUS_PENDING_QUIT
    else:
        raise "Illegal node status"


@external
def pause():
    status: uint256 = self.nodeStatus[msg.sender]
    if status == NODE_STATUS_AVAILABLE:
        self._remove_available(msg.sender)
        self.nodeStatus[msg.sender] = NODE_STATUS_PAUSED
    elif status == NODE_STATUS_BUSY:
        self.nodeStatus[msg.sender] = NODE_STATUS_PENDING_PAUSE
    else:
        raise "Illegal node status"


@external
def resume():
    assert self.nodeStatus[msg.sender] == NODE_STATUS_PAUSED, "Illegal node status"
    self.nodeStatus[msg.sender] = NODE_STATUS_AVAILABLE
    self._add_available(msg.sender)


@external
def startTask(nodeAddress: address):
    self._only_task_contract()
    assert self.nodeStatus[nodeAddress] == NODE_STATUS_AVAILABLE, "Node is not available"
    self._remove_available(nodeAddress)
    self.nodeStatus[nodeAddress] = NODE_STATUS_BUSY


@external
def finishTask(nodeAddress: address):
    self._only_task_contract()
    status: uint256 = self.nodeStatus[nodeAddress]
    if status == NODE_STATUS_BUSY:
        self.nodeStatus[nodeAddress] = NODE_STATUS_AVAILABLE
        self._add_available(nodeAddress)
    elif status == NODE_STATUS_PENDING_PAUSE:
        self.nodeStatus[nodeAddress] = NODE_STATUS_PAUSED
    elif status == NODE_STATUS_PENDING_QUIT:
        self._remove_node(nodeAddress)
        self._return_stake(nodeAddress)
    else:
        raise "Illegal node status"


@external
def slash(nodeAddress: address):
    self._only_task_contract()
    status: uint256 = self.nodeStatus[nodeAddress]
    assert status == NODE_STATUS_BUSY or status == NODE_STATUS_PENDING_PAUSE or status == NODE_STATUS_PENDING_QUIT, "Illegal node status"
    self._remove_node(nodeAddress)
    assert extcall self.token.transfer(ownable.owner, STAKE_AMOUNT), "Token transfer failed"


@external
def updateTaskContractAddress(taskContract: address):
    ownable._check_owner()
    self.taskContract = taskContract


@external
@view
def getNodeStatus(nodeAddress: address) -> uint256:
    return self.nodeStatus[nodeAddress]


@external
@view
def getAvailableNodeAt(index: uint256) -> address:
    """Our addition: the index-th AVAILABLE node (the order changes as nodes come and go)."""
    assert index < self.availableNodes, "Illegal index given"
    return self.availableList[index]


@external
@view
def stakeAmount() -> uint256:
    return STAKE_AMOUNT


@external
@view
def maxNodes() -> uint256:
    return MAX_NODES
