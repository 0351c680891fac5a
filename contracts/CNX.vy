# pragma version 0.4.3
"""
@title CrynuxToken (CNX)
@notice ERC20 with OpenZeppelin's observable behaviour, which H-net clients rely on
        when they parse receipts by log position: transferFrom logs Approval (the
        new allowance) before Transfer, and an infinite allowance is never spent.
"""

from ethereum.ercs import IERC20

implements: IERC20

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

MAX_ALLOWANCE: constant(uint256) = max_value(uint256)
SUPPLY: constant(uint256) = 4_351_443_962 * 10**18

name: public(String[16])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__():
    self.name = "Crynux"
    self.symbol = "CNX"
    self.decimals = 18
    self.totalSupply = SUPPLY
    self.balanceOf[msg.sender] = SUPPLY
    log Transfer(sender=empty(address), receiver=msg.sender, value=SUPPLY)


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert sender != empty(address), "ERC20: transfer from the zero address"
    assert receiver != empty(address), "ERC20: transfer to the zero address"
    balance: uint256 = self.balanceOf[sender]
    assert balance >= amount, "ERC20: transfer amount exceeds balance"
    self.balanceOf[sender] = balance - amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@internal
def _approve(owner: address, spender: address, amount: uint256):
    assert owner != empty(address), "ERC20: approve from the zero address"
    assert spender != empty(address), "ERC20: approve to the zero address"
    self.allowance[owner][spender] = amount
    log Approval(owner=owner, spender=spender, value=amount)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self._approve(msg.sender, spender, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    current: uint256 = self.allowance[sender][msg.sender]
    if current != MAX_ALLOWANCE:
        assert current >= amount, "ERC20: insufficient allowance"
        self._approve(sender, msg.sender, current - amount)
    self._transfer(sender, receiver, amount)
    return True


@external
def increaseAllowance(spender: address, addedValue: uint256) -> bool:
    self._approve(msg.sender, spender, self.allowance[msg.sender][spender] + addedValue)
    return True


@external
def decreaseAllowance(spender: address, subtractedValue: uint256) -> bool:
    current: uint256 = self.allowance[msg.sender][spender]
    assert current >= subtractedValue, "ERC20: decreased allowance below zero"
    self._approve(msg.sender, spender, current - subtractedValue)
    return True
