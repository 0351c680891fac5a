"""The in-memory chain: eth-tester over py-evm, with a harness-owned clock and seeded
block randomness (see `TesterBackend`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.types import TxReceipt

from hydrogen_harness.chain.backend import Backend, topics_match
from hydrogen_harness.chain.determinism import BLOCK_GAS_LIMIT, INITIAL_BASE_FEE, mix_hash, opcode_block_hash
from hydrogen_harness.chain.block_logs import BlockLogIndex, web3_log

__all__ = ["TesterBackend", "BLOCK_GAS_LIMIT"]



def _answer_blockhash_as_revm(chain: Any) -> None:
    """Make the BLOCKHASH opcode of py-evm `chain` answer `opcode_block_hash`, as revm
    does, so that the Task contract selects the same nodes on both in-memory chains.
    Block headers and their hashes are untouched. (The chain class is eth-tester's,
    made for this chain alone; a revert rebuilds the chain from the same class.)"""
    from eth.vm.forks.prague import PragueVM
    from eth.vm.forks.prague.state import PragueState
    from eth_typing import Hash32

    class RevmBlockhashState(PragueState):
        def get_ancestor_hash(self, block_number: int) -> Hash32:
            depth = self.block_number - block_number
            if block_number < 0 or not 0 < depth <= 256:
                return Hash32(b"")
            return Hash32(opcode_block_hash(block_number))

    (first, vm), *rest = type(chain).vm_configuration
    if vm is not PragueVM or rest:
        raise RuntimeError(f"expected eth-tester's chain to run PragueVM alone, found {type(chain).vm_configuration}")
    type(chain).vm_configuration = ((first, PragueVM.configure(__name__="RevmBlockhashPragueVM", _state_class=RevmBlockhashState)),)


def _seeded_pyevm_backend(seed: int, genesis_timestamp: int, wall_clock: Callable[[], int] | None) -> Any:
    from eth.exceptions import HeaderNotFound
    from eth_tester import PyEVMBackend
    from eth_tester.backends.pyevm.main import get_total_blob_gas
    from eth_utils import to_canonical_address

    class SeededPyEVMBackend(PyEVMBackend):
        """py-evm with a harness-owned clock and seeded block randomness.

        Stock eth-tester stamps blocks with the wall clock and draws `mix_hash`
        (prevrandao) from os.urandom, so block hashes, and so the Task
        contract's node selection, would differ between runs.
        """

        def __init__(self) -> None:
            self.next_timestamp: int | None = None
            self.on_mined: list[Callable[[int], None]] = []  # called with each mined block's number
            params = PyEVMBackend._generate_genesis_params(
                overrides={"timestamp": genesis_timestamp, "gas_limit": BLOCK_GAS_LIMIT}
            )
            params["base_fee_per_gas"] = INITIAL_BASE_FEE
            state = PyEVMBackend._generate_genesis_state(num_accounts=1)
            super().__init__(genesis_parameters=params, genesis_state=state)
            if wall_clock is None:  # the harness clock: the simulation's chain, as on revm
                _answer_blockhash_as_revm(self.chain)
            self.pin_pending_header()

        def pin_pending_header(self) -> None:
            header = self.chain.header
            if header.gas_used and self.next_timestamp is None:
                return  # transactions already ran at this block's time: keep it
            parent = self.chain.get_canonical_head()
            stamp = self.next_timestamp if self.next_timestamp is not None else parent.timestamp + 1
            if wall_clock is not None and self.next_timestamp is None:
                stamp = max(stamp, wall_clock())
            # Transactions run against the pending header, so its prevrandao must be
            # the mix hash the block is later mined with.
            mix_hash = self.mix_hash(header.block_number)
            if (header.timestamp, header.gas_limit, header.mix_hash) == (stamp, BLOCK_GAS_LIMIT, mix_hash):
                return  # a new header object would make py-evm rebuild its VM state
            self.chain.header = header.copy(timestamp=stamp, gas_limit=BLOCK_GAS_LIMIT, mix_hash=mix_hash)

        def mix_hash(self, number: int) -> bytes:
            return mix_hash(seed, number)

        def mine_blocks(self, num_blocks: int = 1, coinbase: Any = None) -> tuple[bytes, ...]:
            hashes = []
            for _ in range(num_blocks):
                number = self.chain.header.block_number
                kwargs: dict[str, Any] = {
                    "coinbase": coinbase if coinbase is not None else to_canonical_address("0x" + "00" * 20),
                    "mix_hash": self.mix_hash(number),
                    "blob_gas_used": sum(get_total_blob_gas(tx) for tx in self.chain.get_block().transactions),
                }
                block = self.chain.mine_block(**kwargs)
                hashes.append(block.hash)
                self.next_timestamp = None
                self.pin_pending_header()
                for hook in self.on_mined:
                    hook(int(block.number))
            return tuple(hashes)

        def _find_transaction(self, tx_hash: bytes) -> tuple[Any, Any, int]:
            """A transaction's block and index through py-evm's index, not eth-tester's
            scan of every block back from the head (which a served chain mining a block
            a second would make slower with every receipt poll)."""
            from eth.exceptions import TransactionNotFound as EvmTransactionNotFound
            from eth_tester.backends.pyevm.main import _get_transaction_by_hash

            pending = self.chain.get_block()
            if pending.transactions:
                for index, tx in enumerate(pending.transactions):
                    if tx.hash == tx_hash:
                        return pending, tx, index
            try:
                number, index = self.chain.chaindb.get_transaction_index(tx_hash)
                block = self.chain.get_canonical_block_by_number(number)
            except (EvmTransactionNotFound, HeaderNotFound):
                return _get_transaction_by_hash(self.chain, tx_hash)  # raises eth-tester's not-found
            if number < pending.number and index < len(block.transactions) and block.transactions[index].hash == tx_hash:
                return block, block.transactions[index], index
            return _get_transaction_by_hash(self.chain, tx_hash)  # indexed on a block a revert dropped

        def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
            from eth_tester.backends.pyevm.main import serialize_transaction

            block, tx, index = self._find_transaction(transaction_hash)
            return serialize_transaction(block, tx, index, block.number == self.chain.get_block().number)

        def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
            from eth_tester.backends.pyevm.main import serialize_transaction_receipt

            block, tx, index = self._find_transaction(transaction_hash)
            is_pending = block.number == self.chain.get_block().number
            receipts = block.get_receipts(self.chain.chaindb)
            return serialize_transaction_receipt(block, receipts, tx, index, is_pending, self.chain.get_vm())

        def revert_to_snapshot(self, snapshot: Any) -> None:
            super().revert_to_snapshot(snapshot)
            self.next_timestamp = None
            self.pin_pending_header()

    return SeededPyEVMBackend()


class TesterBackend(Backend):
    """The in-memory chain: eth-tester over py-evm, one block per transaction.

    By default blocks are one second apart whatever the wall clock says. With
    `wall_clock` (the sandbox, where real clients compare deadlines with their own
    clocks) a block is stamped no earlier than `wall_clock()`; call `refresh()`
    before sending a transaction so its block gets the current time.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, seed: int, genesis_timestamp: int, wall_clock: Callable[[], int] | None = None) -> None:
        from eth_tester import EthereumTester

        self.wall_clock = wall_clock
        self.pyevm = _seeded_pyevm_backend(seed, genesis_timestamp, wall_clock)
        self.tester = EthereumTester(backend=self.pyevm)
        self.faucet_key: bytes = self.pyevm.account_keys[0].to_bytes()
        self.chain_id = int(self.pyevm.chain.chain_id)
        self.counts_own_nonces = True
        self._logs = BlockLogIndex(web3_log, capacity=50_000)

    def logs(self, addresses: set[str], from_block: int, to_block: int, topics: Sequence[Any] | None) -> list[Any]:
        """eth_getLogs read straight from py-evm's receipts, cached per block hash.

        eth-tester's own get_logs normalises every receipt in the range on each call
        (about 10 ms for 10 blocks); nodes, the app and the Relay all poll logs, so
        this is where a simulation spends its time unless blocks are indexed once.
        """
        chain = self.pyevm.chain
        head = chain.get_canonical_head().block_number
        found: list[dict[str, Any]] = []
        for number in range(max(from_block, 0), min(to_block, head) + 1):
            for log in self._logs.get(chain, number, chain.chaindb.get_canonical_block_hash(number)):
                if log["address"].lower() in addresses and topics_match(log["topics"], topics):
                    found.append(log)
        return found

    def block_timestamp(self, number: int) -> int:
        return int(self.pyevm.chain.get_canonical_block_header_by_number(number).timestamp)

    def head(self) -> tuple[int, int]:
        """Number and timestamp of the latest mined block."""
        header = self.pyevm.chain.get_canonical_head()
        return int(header.block_number), int(header.timestamp)

    def refresh(self) -> None:
        """Re-stamp the pending block with the wall clock (it was stamped when the
        previous block was mined); nothing to do on the harness clock."""
        if self.wall_clock is not None:
            self.pyevm.pin_pending_header()

    def web3(self) -> Web3:
        from web3 import EthereumTesterProvider

        return Web3(EthereumTesterProvider(self.tester))

    def block_hash(self, number: int) -> bytes | None:
        from eth.exceptions import HeaderNotFound

        if number < 0:
            return None
        try:
            return bytes(self.pyevm.chain.chaindb.get_canonical_block_hash(number))
        except HeaderNotFound:
            return None

    def balance(self, address: str) -> int:
        return int(self.tester.get_balance(to_checksum_address(address)))

    def code(self, address: str) -> bytes:
        code = self.tester.get_code(to_checksum_address(address))
        return bytes.fromhex(code.removeprefix("0x")) if isinstance(code, str) else bytes(code)

    def pending_nonce(self, address: str) -> int:
        return int(self.tester.get_nonce(to_checksum_address(address), "pending"))

    def send_raw(self, raw: bytes) -> str:
        from eth_tester.exceptions import TransactionFailed

        from hydrogen_harness.protocol.reverts import RevertError, decode_revert

        try:
            return str(self.tester.send_raw_transaction("0x" + raw.hex()))
        except TransactionFailed as exc:
            raise RevertError(decode_revert(exc)) from exc

    def wait_receipt(self, tx_hash: str) -> TxReceipt:
        # Transactions are mined as they arrive, so the receipt is already there.
        found = self.receipt(tx_hash)
        if found is None:
            raise LookupError(f"no receipt for {tx_hash}: the in-memory chain mines every transaction at once")
        return found

    def call(self, tx: dict[str, Any], block: int | str) -> bytes:
        # Straight to eth-tester: web3's request and result formatting cost twice the
        # call itself, and actors read views every step.
        from eth_tester.exceptions import TransactionFailed

        from hydrogen_harness.protocol.reverts import RevertError, decode_revert

        params = {key: value for key, value in tx.items() if value is not None}
        if isinstance(params.get("data"), (bytes, bytearray)):
            params["data"] = "0x" + bytes(params["data"]).hex()
        try:
            raw = self.tester.call(params, block)
        except TransactionFailed as exc:
            raise RevertError(decode_revert(exc)) from exc
        return bytes.fromhex(raw.removeprefix("0x")) if isinstance(raw, str) else bytes(raw)

    def mine_at(self, timestamp: int) -> int:
        self.set_next_timestamp(timestamp)
        self.tester.mine_blocks(1)
        return timestamp

    def set_next_timestamp(self, timestamp: int) -> None:
        self.pyevm.next_timestamp = timestamp
        self.pyevm.pin_pending_header()

    def snapshot(self) -> Any:
        return self.tester.take_snapshot()

    def revert(self, snapshot_id: Any) -> None:
        self.tester.revert_to_snapshot(snapshot_id)
