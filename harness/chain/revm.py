"""A fast in-memory chain: revm (Rust, through pyrevm) under the harness's block model.

Signed transactions are decoded and their sender recovered, then run straight on
revm's state: no state root is hashed and no block is RLP-encoded, which is where
web3 + eth-tester spend most of their time. The backend keeps the harness's block
model (one block per transaction, a clock one second per block that only the
harness moves, seeded `prevrandao`) and hands back receipts and logs shaped like
web3's, so the bindings and everything above them run unchanged on it. It does not
serve JSON-RPC.

It is meant to give what eth-tester gives for the same signed transactions: the same
gas used (cold and warm accesses, storage refunds, EIP-7623's calldata floor), the
same fees (EIP-1559 base fee from 1 wei, the sender pays gas used x effective price,
the block's fee recipient gets the priority part), the same refusals (nonce, fees,
balance, block gas limit, with eth-tester's `ValidationError` messages), and the
same receipts but for the block hashes: revm hashes no state, so a block's hash
here is a hash chain over its parent, number, time, randomness and transaction.

How pyrevm is driven, and why. pyrevm 0.3.7 never ends a transaction the way a node
does: everything a transaction touched stays in revm's journaled state, so the next
transaction would find every account and slot warm (cheaper gas) and every slot's
"original" value stale (wrong SSTORE costs and refunds). So each transaction runs
inside a journal checkpoint; its changes are read back, the checkpoint is reverted
(which empties the journaled state again) and the changes are written to revm's
database underneath, where the next transaction loads them cold. pyrevm has no
getter for a transaction's storage changes other than its debug dump of the
journaled state (`journal_str`), which is parsed. Its database keeps no history, so
snapshots keep an undo log of what was written. Limits of pyrevm 0.3.7 that remain:
the BLOCKHASH opcode returns keccak256 of the block number in decimal (the tester
gives contracts the same, see `determinism.opcode_block_hash`), and GASPRICE and
BASEFEE read 0 inside the EVM (the fees themselves are charged here, around it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from eth_hash.auto import keccak
from eth_utils import ValidationError, to_canonical_address
from hexbytes import HexBytes
from web3 import Web3
from web3.datastructures import AttributeDict
from web3.types import TxReceipt

from hydrogen_harness.chain.backend import Backend, topics_match
from hydrogen_harness.chain.block_logs import LogRecord, web3_log
from hydrogen_harness.chain.determinism import BLOCK_GAS_LIMIT, INITIAL_BASE_FEE, mix_hash, next_base_fee
from hydrogen_harness.chain.tx_signing import rlp_encode
from hydrogen_harness.protocol.addresses import checksum
from hydrogen_harness.protocol.reverts import RevertError, revert_reason

__all__ = ["Failure", "RevmBackend"]

FAUCET_KEY = (1).to_bytes(32, "big")  # the same faucet as eth-tester's first account
FAUCET_BALANCE = 10**24
COINBASE = "0x" + "00" * 20  # the fee recipient of every block, as on the tester
EMPTY_CODE_HASH = keccak(b"")
_ZERO_HASH = bytes(32)

# Gas schedule of what is charged outside the EVM (intrinsic gas, EIP-7623 floor).
_TX_GAS = 21_000
_CREATE_GAS = 32_000
_INITCODE_WORD_GAS = 2
_ZERO_BYTE_GAS, _NONZERO_BYTE_GAS = 4, 16
_ACCESS_ADDRESS_GAS, _ACCESS_KEY_GAS = 2_400, 1_900
_FLOOR_PER_TOKEN = 10

# pyrevm's debug dump of the journaled state: one account's head, then its storage.
_ACCOUNT = re.compile(r"(0x[0-9a-f]{40}): Account \{ info: AccountInfo \{ balance: (\d+), nonce: (\d+), code_hash: 0x([0-9a-f]{64})")
_ACCOUNT_MARK = ": Account { info: AccountInfo { balance: "
# \b: without it the engine retries each slot's 78-digit key from every one of its digits.
_SLOT = re.compile(r"\b(\d+): StorageSlot \{ previous_or_original_value: (\d+), present_value: (\d+) \}")


class _Account(NamedTuple):
    """An account as written to revm's database (the Python side keeps the same)."""

    balance: int = 0
    nonce: int = 0
    code_hash: bytes = EMPTY_CODE_HASH
    code: bytes = b""


_EMPTY = _Account()


class _Tx(NamedTuple):
    """The fields of a signed transaction that checking, charging and running it need."""

    type: int
    chain_id: int | None
    nonce: int
    to: str | None
    data: bytes
    value: int
    gas: int
    max_fee: int  # gasPrice for a legacy transaction
    priority_fee: int  # gasPrice too for a legacy transaction
    access_list: tuple[tuple[str, tuple[int, ...]], ...]


@dataclass
class _Block:
    number: int
    timestamp: int
    hash: bytes
    base_fee: int
    gas_used: int
    tx_hashes: tuple[str, ...]
    logs: list[dict[str, Any]]  # shaped as TesterBackend.logs shapes them


@dataclass(frozen=True)
class _Mark:
    """What a snapshot restores: the head, the pending block's time, the undo log's length."""

    head: int
    next_timestamp: int | None
    undo: int


class RevmBackend(Backend):
    """See the module docstring. Snapshots are reverted to at most once, newest first."""

    __test__ = False

    def __init__(self, seed: int, genesis_timestamp: int, chain_id: int = 131277322940537) -> None:
        import pyrevm
        from eth_account import Account

        self._pyrevm = pyrevm
        self.seed = seed
        self.chain_id = chain_id
        self.faucet_key = FAUCET_KEY
        self.counts_own_nonces = True
        self.evm = pyrevm.EVM(spec_id="PRAGUE", gas_limit=BLOCK_GAS_LIMIT)
        # The Python side's copy of every account written to revm's database: balances,
        # nonces and code are read from here, never through revm (a read would load the
        # account into the journaled state and so warm it for the next transaction).
        self._accounts: dict[str, _Account] = {}
        # (address, old account) or (address, slot, old value): what to write back on a
        # revert. Kept only while a snapshot is open.
        self._undo: list[tuple[Any, ...]] = []
        self._snapshots: dict[int, _Mark] = {}
        self._last_snapshot = 0
        self._receipts: dict[str, AttributeDict[str, Any]] = {}
        self._failures: dict[str, Failure] = {}
        self._inputs: dict[str, tuple[str | None, bytes]] = {}
        self._next_timestamp: int | None = None
        genesis_hash = _block_hash(_ZERO_HASH, 0, genesis_timestamp, mix_hash(seed, 0), ())
        self._blocks: list[_Block] = [_Block(0, genesis_timestamp, genesis_hash, INITIAL_BASE_FEE, 0, (), [])]
        self._write_account(Account.from_key(FAUCET_KEY).address.lower(), _Account(balance=FAUCET_BALANCE))
        self._pin_block()

    # ------------------------------------------------------------ blocks

    def _pending(self) -> tuple[int, int, int]:
        """Number, timestamp and base fee of the block the next transaction goes into."""
        parent = self._blocks[-1]
        stamp = self._next_timestamp if self._next_timestamp is not None else parent.timestamp + 1
        return parent.number + 1, stamp, next_base_fee(parent.base_fee, parent.gas_used, BLOCK_GAS_LIMIT)

    def _pin_block(self) -> None:
        number, stamp, _ = self._pending()
        self.evm.set_block_env(
            self._pyrevm.BlockEnv(
                number=number, coinbase=COINBASE, timestamp=stamp, prevrandao=mix_hash(self.seed, number), gas_limit=BLOCK_GAS_LIMIT
            )
        )

    def _pending_hash(self, tx_hash: str | None) -> bytes:
        """The hash the pending block gets when mined with `tx_hash` (or empty)."""
        number, stamp, _ = self._pending()
        return _block_hash(self._blocks[-1].hash, number, stamp, mix_hash(self.seed, number), (tx_hash,) if tx_hash else ())

    def _mine(self, gas_used: int = 0, tx_hash: str | None = None, logs: list[dict[str, Any]] | None = None, block_hash: bytes | None = None) -> _Block:
        number, stamp, base_fee = self._pending()
        txs = (tx_hash,) if tx_hash is not None else ()
        block_hash = block_hash or self._pending_hash(tx_hash)
        block = _Block(number, stamp, block_hash, base_fee, gas_used, txs, logs or [])
        self._blocks.append(block)
        self._next_timestamp = None
        self._pin_block()
        return block

    def head(self) -> tuple[int, int]:
        block = self._blocks[-1]
        return block.number, block.timestamp

    def mine_at(self, timestamp: int) -> int:
        self.set_next_timestamp(timestamp)
        self._mine()
        return timestamp

    def set_next_timestamp(self, timestamp: int) -> None:
        self._next_timestamp = timestamp
        self._pin_block()

    def block_timestamp(self, number: int) -> int:
        return self._blocks[number].timestamp

    def block_hash(self, number: int) -> bytes | None:
        if number < 0 or number >= len(self._blocks):
            return None
        return self._blocks[number].hash

    # ------------------------------------------------------------ accounts

    def balance(self, address: str) -> int:
        return self._accounts.get(address.lower(), _EMPTY).balance

    def code(self, address: str) -> bytes:
        return self._accounts.get(address.lower(), _EMPTY).code

    def pending_nonce(self, address: str) -> int:
        return self._accounts.get(address.lower(), _EMPTY).nonce

    def _write_account(self, address: str, account: _Account) -> None:
        """Write an account to revm's database (the journaled state must not hold it:
        pyrevm writes to the database only accounts the journal has not loaded)."""
        old = self._accounts.get(address)
        if old == account:
            return
        if self._snapshots:
            self._undo.append((address, old))
        self._accounts[address] = account
        code = account.code if old is None or old.code_hash != account.code_hash else None
        info = self._pyrevm.AccountInfo(  # type: ignore[call-arg]  # pyrevm's stub omits balance, its constructor takes it
            balance=account.balance, nonce=account.nonce, code_hash=account.code_hash, code=code or None
        )
        self.evm.insert_account_info(address, info)

    def _write_slot(self, address: str, slot: int, value: int, old: int) -> None:
        """Write a storage slot to revm's database. pyrevm's insert loads the account
        into the journal, after which it would write to the journal instead: so each
        insert runs inside a checkpoint that is reverted at once."""
        if self._snapshots:
            self._undo.append((address, slot, old))
        checkpoint = self.evm.snapshot()
        self.evm.insert_account_storage(address, slot, value)
        self.evm.revert(checkpoint)

    # ------------------------------------------------------------ transactions

    def send_raw(self, raw: bytes) -> str:
        tx, sender = _decoded(raw)
        self._validate(tx, sender)
        tx_hash = "0x" + keccak(raw).hex()
        self._run(sender, tx, tx_hash)
        return tx_hash

    def _validate(self, tx: _Tx, sender: str) -> None:
        """Refuse what eth-tester (py-evm) refuses, in its order and with its messages."""
        if tx.chain_id is not None and tx.chain_id != self.chain_id:
            raise ValidationError(f"Invalid chain id {tx.chain_id}: this chain's id is {self.chain_id}")
        if tx.gas > BLOCK_GAS_LIMIT:
            raise ValidationError(f"Transaction exceeds gas limit: using {tx.gas}, bringing total to {tx.gas}, but limit is {BLOCK_GAS_LIMIT}")
        _, _, base_fee = self._pending()
        if tx.max_fee < base_fee:
            raise ValidationError(f"Sender's max fee per gas ({tx.max_fee}) is lower than block's base fee per gas ({base_fee})")
        account = self._accounts.get(sender, _EMPTY)
        max_gas_cost = tx.gas * _effective_price(tx, base_fee)
        if account.balance < max_gas_cost:
            raise ValidationError(
                f"Sender {to_canonical_address(sender)!r} cannot afford txn gas {max_gas_cost} with account balance {account.balance}"
            )
        if account.balance < tx.value + max_gas_cost:
            raise ValidationError(
                "Sender does not have enough balance to cover transaction value and gas "
                f" (has {account.balance}, needs {tx.value + max_gas_cost})"
            )
        if account.nonce != tx.nonce:
            raise ValidationError(f"Invalid transaction nonce: Expected {account.nonce}, but got {tx.nonce}")
        if account.balance < tx.gas * tx.max_fee:
            raise ValidationError("Sender has insufficient funds for blob fee.")
        intrinsic = _intrinsic_gas(tx)
        if tx.gas < intrinsic:  # py-evm finds it building the message, after the checks above
            raise ValidationError(f"Message.gas cannot be negative: Got: {tx.gas - intrinsic}")

    def _run(self, sender: str, tx: _Tx, tx_hash: str) -> None:
        """Run a checked transaction in a block of its own, charge its gas, keep its receipt."""
        number, _, base_fee = self._pending()
        price = _effective_price(tx, base_fee)
        account = self._accounts.get(sender, _EMPTY)
        # As a node does: the whole gas limit is paid up front and the unused part
        # refunded after; a call's nonce moves first (a creation's moves in revm, which
        # derives the new address from it).
        self._write_account(
            sender, account._replace(balance=account.balance - tx.gas * price, nonce=account.nonce + (tx.to is not None))
        )
        failure: Failure | None = None
        created: str | None = None
        checkpoint = self.evm.snapshot()
        try:
            try:
                if tx.to is None:
                    created = self.evm.deploy(sender, tx.data, value=tx.value, gas=tx.gas)
                else:
                    self.evm.message_call(sender, tx.to, tx.data, value=tx.value, gas=tx.gas)
            except RuntimeError as exc:
                failure = _failure(str(exc))
            result = self.evm.result
            if result is None:  # refused before it ran: nothing to keep
                raise RuntimeError(f"revm refused the transaction: {failure}")
            changes = self._changes()
            revm_logs = result.logs if failure is None else []
            gas_used = max(int(result.gas_used), _floor_gas(tx))
        except BaseException:
            self.evm.revert(checkpoint)
            self._write_account(sender, account)
            raise
        self.evm.revert(checkpoint)
        # The changes go to the database; then the refund and the fee recipient's part.
        accounts, slots = changes
        refund = (tx.gas - gas_used) * price
        tip = gas_used * (price - base_fee)
        accounts[sender] = accounts.get(sender, self._accounts[sender])
        accounts[sender] = accounts[sender]._replace(balance=accounts[sender].balance + refund)
        if tip:
            recipient = accounts.get(COINBASE, self._accounts.get(COINBASE, _EMPTY))
            accounts[COINBASE] = recipient._replace(balance=recipient.balance + tip)
        for address, new in accounts.items():
            self._write_account(address, new)
        for address, slot, value, old in slots:
            self._write_slot(address, slot, value, old)

        stamp = self._pending()[1]
        block_hash = self._pending_hash(tx_hash)
        hash_bytes = HexBytes(tx_hash)
        logs: list[dict[str, Any]] = []
        for index, log in enumerate(revm_logs):
            topics, payload = log.data
            record = LogRecord(
                address=bytes.fromhex(log.address.removeprefix("0x")),
                topics=[bytes(t) for t in topics],
                data=bytes(payload),
                block_number=number,
                block_hash=bytes(block_hash),
                transaction_hash=bytes(hash_bytes),
                transaction_index=0,
                log_index=index,
                block_timestamp=stamp,
            )
            logs.append(web3_log(record))
        self._mine(gas_used, tx_hash, logs, block_hash)
        self._receipts[tx_hash] = AttributeDict(
            {
                "blockHash": HexBytes(block_hash),
                "blockNumber": number,
                "contractAddress": checksum(created) if created is not None else None,
                "cumulativeGasUsed": gas_used,
                "effectiveGasPrice": price,
                "from": checksum(sender),
                "gasUsed": gas_used,
                "logs": [AttributeDict({"type": "mined", **log}) for log in logs],
                "state_root": b"" if failure is not None else b"\x01",  # eth-tester's receipts carry the status so
                "status": 0 if failure is not None else 1,
                "to": tx.to or "",  # as eth-tester's receipt of a deployment
                "transactionHash": hash_bytes,
                "transactionIndex": 0,
                "type": tx.type,
            }
        )
        self._inputs[tx_hash] = (tx.to, tx.data)
        if failure is not None:
            self._failures[tx_hash] = failure

    def _changes(self) -> tuple[dict[str, _Account], list[tuple[str, int, int, int]]]:
        """What the transaction just run changed: accounts (balance, nonce, new code)
        and storage slots (address, slot, new value, old value), read from revm's
        journaled state before it is reverted."""
        text = self.evm.journal_str
        end = text.find(", transient_storage: ")  # the state's dump ends there
        if end < 0:
            raise RuntimeError("pyrevm's journal dump has changed shape: the revm backend is written for pyrevm 0.3.7")
        accounts: dict[str, _Account] = {}
        slots: list[tuple[str, int, int, int]] = []
        heads = _account_heads(text, end)
        for index, head in enumerate(heads):
            address, balance, nonce, code_hash = head.group(1), int(head.group(2)), int(head.group(3)), bytes.fromhex(head.group(4))
            old = self._accounts.get(address, _EMPTY)
            if (balance, nonce, code_hash) != (old.balance, old.nonce, old.code_hash):
                code = old.code if code_hash == old.code_hash else bytes(self.evm.get_code(address) or b"")
                accounts[address] = _Account(balance, nonce, code_hash, code)
            stop = heads[index + 1].start() if index + 1 < len(heads) else end
            start = text.find("storage: {", head.end(), stop)
            for slot in _SLOT.finditer(text, start, stop):
                original, present = int(slot.group(2)), int(slot.group(3))
                if present != original:
                    slots.append((address, int(slot.group(1)), present, original))
        return accounts, slots

    def call(self, tx: dict[str, Any], block: int | str) -> bytes:
        """A call on the current state (revm keeps no history: only the head's)."""
        if block not in ("latest", "pending") and block != self._blocks[-1].number:
            raise ValueError(f"the revm backend keeps no history: it cannot call at block {block}")
        data = tx.get("data", b"")
        data = data if isinstance(data, bytes) else bytes.fromhex(str(data).removeprefix("0x"))
        checkpoint = self.evm.snapshot()
        try:
            return bytes(self.evm.message_call(tx["from"], tx["to"], data, value=tx.get("value") or 0, gas=tx.get("gas") or 30_000_000))
        except RuntimeError as exc:
            failure = _failure(str(exc))
            raise RevertError(revert_reason(failure.revert_data), label=failure.describe("")) from None
        finally:
            self.evm.revert(checkpoint)  # a call leaves nothing behind, not even warm accounts

    def receipt(self, tx_hash: str) -> TxReceipt | None:
        return self._receipts.get(tx_hash)  # type: ignore[return-value]

    def wait_receipt(self, tx_hash: str) -> TxReceipt:
        return self._receipts[tx_hash]  # type: ignore[return-value]

    def failure(self, sender: str, tx: dict[str, Any], receipt: TxReceipt) -> tuple[str | None, str | None]:
        found = self._failures.get("0x" + bytes(receipt["transactionHash"]).hex())
        return (revert_reason(found.revert_data), found.halt) if found is not None else (None, None)

    def transaction_input(self, tx_hash: str) -> tuple[str | None, bytes]:
        return self._inputs[tx_hash]

    def logs(self, addresses: set[str], from_block: int, to_block: int, topics: Any) -> list[Any]:
        """Logs of blocks [from_block, to_block], read from those blocks only."""
        found: list[dict[str, Any]] = []
        for number in range(max(from_block, 0), min(to_block, len(self._blocks) - 1) + 1):
            for log in self._blocks[number].logs:
                if log["address"].lower() in addresses and topics_match(log["topics"], topics):
                    found.append(log)
        return found

    # ------------------------------------------------------------ isolation

    def snapshot(self) -> int:
        self._last_snapshot += 1
        self._snapshots[self._last_snapshot] = _Mark(self._blocks[-1].number, self._next_timestamp, len(self._undo))
        return self._last_snapshot

    def revert(self, snapshot_id: Any) -> None:
        """Back to the state of `snapshot_id`, which is used up with every later
        snapshot (as on anvil: take a new one to revert again)."""
        if snapshot_id not in self._snapshots:
            raise ValueError(f"unknown snapshot {snapshot_id!r}: a snapshot can be reverted to once")
        mark = self._snapshots[snapshot_id]
        for later in [i for i in self._snapshots if i >= snapshot_id]:
            del self._snapshots[later]
        undo, self._undo[mark.undo :] = self._undo[mark.undo :], []
        recording, self._snapshots = self._snapshots, {}  # the writes below are not to be undone
        for entry in reversed(undo):
            if len(entry) == 2:
                address, old = entry
                self._write_account(address, old or _EMPTY)
                if old is None:
                    del self._accounts[address]
            else:
                address, slot, value = entry
                self._write_slot(address, slot, value, old=0)  # not recorded: no snapshot is open here
        self._snapshots = recording
        if not self._snapshots:
            self._undo.clear()
        for block in self._blocks[mark.head + 1 :]:
            for tx_hash in block.tx_hashes:
                self._receipts.pop(tx_hash, None)
                self._failures.pop(tx_hash, None)
                self._inputs.pop(tx_hash, None)
        del self._blocks[mark.head + 1 :]
        self._next_timestamp = mark.next_timestamp
        self._pin_block()

    def web3(self) -> Web3:
        return Web3()  # no provider: builds contract objects and encodes calls only


@dataclass(frozen=True)
class Failure:
    """How a call or transaction failed: a revert (with its data), or a halt."""

    revert_data: bytes  # empty for a halt, or a revert with no data
    halt: str | None = None  # revm's halt reason (OutOfGas, CallTooDeep, ...); None for a revert

    def describe(self, label: str) -> str:
        return f"{label} (halted: {self.halt})" if self.halt else label


def _failure(message: str) -> Failure:
    """pyrevm reports a revert as "Revert { gas_used: N, output: 0x... }" and a halt as
    "Halt { reason: OutOfGas(...), gas_used: N }"; anything else is a halt too."""
    marker = "output: 0x"
    start = message.find(marker)
    if message.lstrip().startswith("Revert") and start >= 0:
        digits = message[start + len(marker) :].split()[0].rstrip("},")
        try:
            return Failure(bytes.fromhex(digits))
        except ValueError:
            return Failure(b"")
    found = re.search(r"reason:\s*([A-Za-z]+)", message)
    return Failure(b"", halt=found.group(1) if found else message.strip()[:80] or "unknown")


def _block_hash(parent: bytes, number: int, timestamp: int, randomness: bytes, tx_hashes: tuple[str, ...]) -> bytes:
    """A block's hash: over its parent's, so that a block mined again after a revert
    with other contents gets another hash (what cursors detect rewinds by)."""
    body = b"".join(bytes.fromhex(h[2:]) for h in tx_hashes)
    return keccak(b"hydrogen-harness-revm-block" + parent + number.to_bytes(8, "big") + timestamp.to_bytes(8, "big") + randomness + body)


def _effective_price(tx: _Tx, base_fee: int) -> int:
    """What one unit of gas costs the sender (EIP-1559; a legacy price as it is)."""
    return min(tx.max_fee, base_fee + tx.priority_fee)


def _intrinsic_gas(tx: _Tx) -> int:
    zeros = tx.data.count(0)
    gas = _TX_GAS + zeros * _ZERO_BYTE_GAS + (len(tx.data) - zeros) * _NONZERO_BYTE_GAS
    if tx.to is None:
        gas += _CREATE_GAS + _INITCODE_WORD_GAS * ((len(tx.data) + 31) // 32)
    for _, keys in tx.access_list:
        gas += _ACCESS_ADDRESS_GAS + _ACCESS_KEY_GAS * len(keys)
    return gas


def _floor_gas(tx: _Tx) -> int:
    """EIP-7623 (Prague): a transaction pays at least 10 gas per calldata token."""
    zeros = tx.data.count(0)
    return _TX_GAS + _FLOOR_PER_TOKEN * (zeros + 4 * (len(tx.data) - zeros))


_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _account_heads(text: str, end: int) -> list[re.Match[str]]:
    """The accounts of a journal dump, found by their fixed text (a C-speed search over
    the contracts' bytecode the dump holds) and then parsed in place."""
    heads: list[re.Match[str]] = []
    at = text.find(_ACCOUNT_MARK, 0, end)
    while at >= 0:
        head = _ACCOUNT.match(text, at - 42)  # "0x" and 40 hex digits come before the mark
        if head is None:
            raise RuntimeError("pyrevm's journal dump has changed shape: the revm backend is written for pyrevm 0.3.7")
        heads.append(head)
        at = text.find(_ACCOUNT_MARK, head.end(), end)
    return heads


def _decoded(raw: bytes) -> tuple[_Tx, str]:
    """A signed transaction (legacy, EIP-2930 or EIP-1559) and its sender, lower-cased.

    Read with rlp and recovered with libsecp256k1 directly: eth-account's typed
    transaction classes took 1.5 ms a transaction, more than running it on revm."""
    import rlp
    from coincurve import PublicKey

    kind = raw[0] if raw and raw[0] < 0x80 else 0
    if kind not in (0, 1, 2):
        raise ValidationError(f"the revm backend runs legacy, EIP-2930 and EIP-1559 transactions, not type {kind}")
    try:
        fields = rlp.decode(raw[1:] if kind else raw)
    except rlp.exceptions.DecodingError as exc:
        raise ValidationError(f"undecodable transaction: {exc}") from None
    if not isinstance(fields, list) or len(fields) != {0: 9, 1: 11, 2: 12}[kind]:
        raise ValidationError(f"a type {kind} transaction has {({0: 9, 1: 11, 2: 12})[kind]} fields")
    number = [int.from_bytes(f, "big") if isinstance(f, bytes) else 0 for f in fields]
    chain_id: int | None
    if kind == 2:
        chain_id, nonce, priority, max_fee, gas = number[:5]
        to, value, data, access = fields[5], number[6], fields[7], fields[8]
    elif kind == 1:
        chain_id, nonce, max_fee, gas = number[:4]
        priority = max_fee
        to, value, data, access = fields[4], number[5], fields[6], fields[7]
    else:
        nonce, max_fee, gas = number[:3]
        priority = max_fee
        to, value, data, access = fields[3], number[4], fields[5], []
    v, r, s = number[-3:]
    if kind:
        recovery = v
        signing = bytes([kind]) + rlp_encode(fields[:-3])
    elif v >= 35:  # EIP-155
        chain_id, recovery = (v - 35) // 2, (v - 35) % 2
        signing = rlp_encode([*fields[:6], chain_id, 0, 0])
    else:
        chain_id, recovery = None, v - 27
        signing = rlp_encode(fields[:6])
    if recovery not in (0, 1) or not 0 < r < _SECP256K1_N or not 0 < s <= _SECP256K1_N // 2:
        raise ValidationError("Invalid signature: v, r or s is out of range")
    if access:
        # pyrevm 0.3.7 cannot pass an access list to revm, so the gas would be wrong.
        raise ValidationError("the revm backend cannot run transactions with an access list")
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([recovery])
    public = PublicKey.from_signature_and_message(signature, keccak(signing), hasher=None).format(compressed=False)
    sender = "0x" + keccak(public[1:])[-20:].hex()
    tx = _Tx(
        type=kind,
        chain_id=chain_id,
        nonce=nonce,
        to=checksum("0x" + to.hex()) if to else None,
        data=bytes(data),
        value=value,
        gas=gas,
        max_fee=max_fee,
        priority_fee=priority,
        access_list=(),
    )
    return tx, sender
