# pragma version 0.4.3
"""
@title Ownable
@notice OpenZeppelin-compatible ownership (same ABI and revert strings),
        shared by Node and Task.
"""

owner: public(address)

event OwnershipTransferred:
    previousOwner: indexed(address)
    newOwner: indexed(address)


@deploy
def __init__():
    self._transfer_ownership(msg.sender)


@internal
@view
def _check_owner():
    assert msg.sender == self.owner, "Ownable: caller is not the owner"


@internal
def _transfer_ownership(new_owner: address):
    old_owner: address = self.owner
    self.owner = new_owner
    log OwnershipTransferred(previousOwner=old_owner, newOwner=new_owner)


@external
def transferOwnership(newOwner: address):
    self._check_owner()
    assert newOwner != empty(address), "Ownable: new owner is the zero address"
    self._transfer_ownership(newOwner)


@external
def renounceOwnership():
    self._check_owner()
    self._transfer_ownership(empty(address))
