"""The Python side of the test wallet (see the package docstring)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from hydrogen_harness.client.tls import shared_tls_context
from hydrogen_harness.jsonrpc.errors import INTERNAL_ERROR, INVALID_PARAMS

__all__ = ["PROVIDER_JS", "USER_REJECTED", "TestWallet", "WalletError", "WalletRequest"]

PROVIDER_JS = (Path(__file__).resolve().parent / "provider.js").read_text()
USER_REJECTED = 4001
UNAUTHORIZED = 4100
UNSUPPORTED = 4200
UNRECOGNISED_CHAIN = 4902

# Methods the wallet answers itself; every other method is forwarded to the node.
_SIGNING = ("eth_sendTransaction", "personal_sign", "eth_sign", "eth_signTypedData_v4")
_REFUSED = ("eth_signTransaction", "eth_signTypedData", "eth_signTypedData_v3", "eth_subscribe")


class WalletError(Exception):
    """An EIP-1193 error: `code`, `message`, optional `data`."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def as_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


@dataclass
class WalletRequest:
    """One request a page made: `outcome` is "ok", "rejected" (4001) or "error"."""

    method: str
    params: Any
    outcome: str
    result: Any = None
    error: dict[str, Any] | None = None
    origin: str = ""

    def __str__(self) -> str:
        shown = json.dumps(self.params)[:200]
        tail = json.dumps(self.result)[:120] if self.outcome == "ok" else json.dumps(self.error)[:200]
        return f"{self.method} {shown} -> {self.outcome} {tail}"


@dataclass
class _Rejection:
    method: str | None
    remaining: int | None  # None: every matching request until cleared


@dataclass
class TestWallet:
    """The wallet's control object. `accounts[0]` is the selected account (the one
    `eth_accounts` returns once a page connected); `chains` maps the chain ids it knows
    (0x-hex) to their JSON-RPC URLs (the sandbox's, plus any `wallet_addEthereumChain`)."""

    __test__ = False  # not a pytest test class

    rpc_url: str
    chain_id: int
    accounts: list[LocalAccount]
    connected: bool = False
    requests: list[WalletRequest] = field(default_factory=list)
    chains: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    funder: Callable[[int, int], LocalAccount] | None = None  # (cnx, eth) -> a funded account

    def __post_init__(self) -> None:
        self.chains.setdefault(hex(self.chain_id), self.rpc_url)
        self._current = hex(self.chain_id)
        self._rejections: list[_Rejection] = []
        self._contexts: list[Any] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=self.timeout, verify=shared_tls_context())
        self._next_id = 0

    # ---------------------------------------------------------------- control

    @property
    def address(self) -> str:
        """The selected account's address."""
        return str(self.accounts[0].address)

    @property
    def current_chain_id(self) -> int:
        return int(self._current, 16)

    def reject(self, method: str | None = None, *, count: int | None = 1) -> None:
        """Reject (code 4001, as a user clicking "Reject") the next `count` requests that
        need the user (`eth_requestAccounts` and the signing methods), or only those of
        `method`, which may be any method; `count=None`: every one until `clear_rejections()`."""
        self._rejections.append(_Rejection(method, count))

    def clear_rejections(self) -> None:
        self._rejections.clear()

    def add_account(self, account: LocalAccount) -> None:
        self.accounts.append(account)

    def new_account(self, cnx: int = 1_000 * 10**18, eth: int = 10 * 10**18) -> LocalAccount:
        """A new funded account (from the sandbox) added to the wallet, not selected."""
        if self.funder is None:
            raise RuntimeError("this wallet has no funder: add accounts with add_account()")
        account = self.funder(cnx, eth)
        self.accounts.append(account)
        return account

    def switch_account(self, index_or_address: int | str) -> None:
        """Select another account; connected pages get `accountsChanged`."""
        if isinstance(index_or_address, int):
            chosen = self.accounts[index_or_address]
        else:
            chosen = next(a for a in self.accounts if a.address.lower() == index_or_address.lower())
        self.accounts.remove(chosen)
        self.accounts.insert(0, chosen)
        if self.connected:
            self.emit("accountsChanged", [chosen.address.lower()])

    def switch_chain(self, chain_id: int, rpc_url: str | None = None) -> None:
        """Move to another chain (known, or given with its URL); pages get `chainChanged`."""
        key = hex(chain_id)
        if rpc_url is not None:
            self.chains[key] = rpc_url
        if key not in self.chains:
            raise KeyError(f"unknown chain {chain_id}: give its rpc_url")
        self._current = key
        self.emit("chainChanged", key)

    def disconnect(self) -> None:
        """Forget the site's permission: pages get `accountsChanged` with no account."""
        self.connected = False
        self.emit("accountsChanged", [])

    def calls(self, method: str) -> list[WalletRequest]:
        """The recorded requests of one method, in order."""
        return [r for r in self.requests if r.method == method]

    def log_text(self) -> str:
        return "\n".join(f"{i:3} {r}" for i, r in enumerate(self.requests)) or "(no wallet request)"

    # ---------------------------------------------------------------- the browser

    def install(self, context: Any) -> None:
        """Inject the provider into every page of a Playwright (sync API) BrowserContext."""
        context.expose_binding("__hydrogenWalletRequest", self._on_request)
        context.expose_binding("__hydrogenWalletState", lambda source: {"chainId": self._current})
        context.add_init_script(script=PROVIDER_JS)
        self._contexts.append(context)

    def emit(self, event: str, payload: Any) -> None:
        """Emit a provider event in every open page of the installed contexts."""
        for context in self._contexts:
            for page in context.pages:
                if not page.is_closed():
                    page.evaluate("([e, p]) => window.__hydrogenWalletEmit && window.__hydrogenWalletEmit(e, p)", [event, payload])

    def close(self) -> None:
        self._http.close()

    def _on_request(self, source: Any, method: Any, params: Any) -> dict[str, Any]:
        origin = ""
        try:
            origin = str(source["page"].url)
        except Exception:  # noqa: BLE001  (only for the log)
            pass
        answer = self.handle(str(method), params, origin=origin)
        return answer

    # ---------------------------------------------------------------- requests

    def handle(self, method: str, params: Any, origin: str = "") -> dict[str, Any]:
        """Answer one request: {"result": ...} or {"error": {code, message[, data]}},
        with "events" to emit in the page after it."""
        events: list[list[Any]] = []
        with self._lock:
            try:
                if self._should_reject(method):
                    raise WalletError(USER_REJECTED, "User rejected the request.")
                result = self._answer(method, params if params is not None else [], events)
            except WalletError as exc:
                outcome = "rejected" if exc.code == USER_REJECTED else "error"
                self.requests.append(WalletRequest(method, params, outcome, error=exc.as_json(), origin=origin))
                return {"error": exc.as_json(), "events": events}
            except Exception as exc:  # noqa: BLE001  (a page must get an EIP-1193 error, never a hang)
                error = WalletError(INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
                self.requests.append(WalletRequest(method, params, "error", error=error.as_json(), origin=origin))
                return {"error": error.as_json(), "events": events}
            self.requests.append(WalletRequest(method, params, "ok", result=result, origin=origin))
            return {"result": result, "events": events}

    def _should_reject(self, method: str) -> bool:
        for rejection in self._rejections:
            if rejection.method is None and method not in ("eth_requestAccounts", *_SIGNING):
                continue
            if rejection.method is not None and rejection.method != method:
                continue
            if rejection.remaining is not None:
                rejection.remaining -= 1
                if rejection.remaining <= 0:
                    self._rejections.remove(rejection)
            return True
        return False

    def _answer(self, method: str, params: Any, events: list[list[Any]]) -> Any:
        if method == "eth_requestAccounts":
            if not self.connected:
                self.connected = True
                events.append(["accountsChanged", [self.address.lower()]])
            return [self.address.lower()]
        if method == "eth_accounts":
            return [self.address.lower()] if self.connected else []
        if method == "eth_chainId":
            return self._current
        if method == "net_version":
            return str(int(self._current, 16))
        if method == "wallet_switchEthereumChain":
            wanted = _chain_param(params)
            if wanted not in self.chains:
                raise WalletError(UNRECOGNISED_CHAIN, f"Unrecognized chain ID {wanted}. Try adding the chain using wallet_addEthereumChain first.")
            if wanted != self._current:
                self._current = wanted
                events.append(["chainChanged", wanted])
            return None
        if method == "wallet_addEthereumChain":
            spec = params[0] if isinstance(params, list) and params else {}
            wanted = _chain_param(params)
            urls = spec.get("rpcUrls") or []
            if wanted not in self.chains:
                if not urls:
                    raise WalletError(INVALID_PARAMS, "wallet_addEthereumChain: rpcUrls is required")
                self.chains[wanted] = str(urls[0])
            if wanted != self._current:
                self._current = wanted
                events.append(["chainChanged", wanted])
            return None
        if method in _REFUSED:
            raise WalletError(UNSUPPORTED, f"The test wallet does not support {method}")
        if method in _SIGNING:
            if not self.connected:
                raise WalletError(UNAUTHORIZED, "The requested account has not been authorized by the user (call eth_requestAccounts)")
            return getattr(self, "_" + method)(params)
        return self._forward(method, params)

    def _account(self, address: Any) -> LocalAccount:
        if not isinstance(address, str) or address.lower() != self.address.lower():
            raise WalletError(UNAUTHORIZED, f"The requested account {address} has not been authorized by the user")
        return self.accounts[0]

    def _forward(self, method: str, params: Any) -> Any:
        self._next_id += 1
        body = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        try:
            response = self._http.post(self.chains[self._current], json=body)
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WalletError(INTERNAL_ERROR, f"the JSON-RPC endpoint failed: {exc}") from exc
        if isinstance(answer, dict) and answer.get("error"):
            error = answer["error"]
            raise WalletError(int(error.get("code", INTERNAL_ERROR)), str(error.get("message", "")), error.get("data"))
        return answer.get("result") if isinstance(answer, dict) else None

    # ---------------------------------------------------------------- signing

    def _eth_sendTransaction(self, params: Any) -> str:
        if not isinstance(params, list) or not params or not isinstance(params[0], dict):
            raise WalletError(INVALID_PARAMS, "eth_sendTransaction expects [transaction]")
        given = params[0]
        account = self._account(given.get("from", self.address))
        tx: dict[str, Any] = {"from": account.address, "value": given.get("value", "0x0")}
        if given.get("to"):
            tx["to"] = to_checksum_address(given["to"])
        data = given.get("data") or given.get("input")
        if data:
            tx["data"] = data
        # As MetaMask: the pending nonce, the node's estimate, EIP-1559 fees from the node.
        nonce = given.get("nonce") or self._forward("eth_getTransactionCount", [account.address, "pending"])
        gas = given.get("gas") or given.get("gasLimit") or self._forward("eth_estimateGas", [tx])
        if given.get("gasPrice"):
            fees: dict[str, Any] = {"gasPrice": int(given["gasPrice"], 16)}
        else:
            tip = int(given.get("maxPriorityFeePerGas") or self._forward("eth_maxPriorityFeePerGas", []), 16)
            latest = self._forward("eth_getBlockByNumber", ["latest", False]) or {}
            base = int(latest.get("baseFeePerGas") or "0x0", 16)
            cap = int(given["maxFeePerGas"], 16) if given.get("maxFeePerGas") else 2 * base + tip
            fees = {"type": 2, "maxPriorityFeePerGas": tip, "maxFeePerGas": max(cap, tip)}
        unsigned: dict[str, Any] = {
            "chainId": int(self._current, 16),
            "nonce": int(nonce, 16),
            "gas": int(gas, 16),
            "value": int(tx["value"], 16),
            "data": tx.get("data", "0x"),
            **fees,
        }
        if "to" in tx:
            unsigned["to"] = tx["to"]
        signed = account.sign_transaction(unsigned)
        return str(self._forward("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()]))

    def _personal_sign(self, params: Any) -> str:
        if not isinstance(params, list) or len(params) < 2:
            raise WalletError(INVALID_PARAMS, "personal_sign expects [data, address]")
        account = self._account(params[1])
        message = params[0]
        raw = bytes.fromhex(message[2:]) if isinstance(message, str) and message.startswith("0x") else str(message).encode()
        return _hex_signature(account.sign_message(encode_defunct(primitive=raw)))

    def _eth_sign(self, params: Any) -> str:
        if not isinstance(params, list) or len(params) < 2:
            raise WalletError(INVALID_PARAMS, "eth_sign expects [address, 32-byte hash]")
        account = self._account(params[0])
        try:
            digest = bytes.fromhex(str(params[1]).removeprefix("0x"))
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise WalletError(INVALID_PARAMS, "eth_sign signs a 32-byte hash (0x + 64 hex digits)")
        return _hex_signature(Account.unsafe_sign_hash(digest, account.key))

    def _eth_signTypedData_v4(self, params: Any) -> str:
        if not isinstance(params, list) or len(params) < 2:
            raise WalletError(INVALID_PARAMS, "eth_signTypedData_v4 expects [address, typed data]")
        account = self._account(params[0])
        typed = json.loads(params[1]) if isinstance(params[1], str) else params[1]
        return _hex_signature(Account.sign_typed_data(account.key, full_message=typed))


def _hex_signature(signed: Any) -> str:
    """0x + r ++ s ++ v (v 27 or 28), as MetaMask answers."""
    return "0x" + int(signed.r).to_bytes(32, "big").hex() + int(signed.s).to_bytes(32, "big").hex() + f"{int(signed.v):02x}"


def _chain_param(params: Any) -> str:
    try:
        return hex(int(str(params[0]["chainId"]), 16))
    except (TypeError, KeyError, IndexError, ValueError) as exc:
        raise WalletError(INVALID_PARAMS, "expected [{chainId: 0x-hex}]") from exc

