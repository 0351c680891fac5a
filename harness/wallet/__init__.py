"""A deterministic browser wallet for DApp tests: an EIP-1193 provider injected into
every page of a Playwright browser context, whose keys stay in Python.

    wallet = TestWallet(rpc_url, chain_id, [account])
    wallet.install(context)            # before the context opens the DApp

The page's `window.ethereum.request(...)` crosses to Python through Playwright's
`expose_binding`; `TestWallet` signs with eth-account and forwards everything else to
the JSON-RPC endpoint. Per test it can be told to reject requests (EIP-1193 code
4001), to switch account or chain (emitting `accountsChanged` / `chainChanged`), and it
records every request in `requests`.

`eth_sign` answers as MetaMask does: a raw secp256k1 signature of the 32-byte hash (no
"Ethereum Signed Message" prefix), `0x` + r ++ s ++ v with v = 27 or 28 and a low s. The
Relay wants v = 0 or 1: subtract 27 from the last byte (the reference DApp does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The plugin imports hydrogen_harness.wallet.fixtures in every pytest session, which runs
# this file: the wallet (eth-account, httpx) loads on first use of a name (PEP 562).
if TYPE_CHECKING:
    from hydrogen_harness.wallet.wallet import PROVIDER_JS, USER_REJECTED, TestWallet, WalletError, WalletRequest

__all__ = ["PROVIDER_JS", "USER_REJECTED", "TestWallet", "WalletError", "WalletRequest"]


if not TYPE_CHECKING:  # type checkers see the imports above

    def __getattr__(name: str) -> Any:
        if name in __all__:
            from hydrogen_harness.wallet import wallet

            return getattr(wallet, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
