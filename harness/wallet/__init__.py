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

from hydrogen_harness.wallet.wallet import PROVIDER_JS, USER_REJECTED, TestWallet, WalletError, WalletRequest

__all__ = ["PROVIDER_JS", "USER_REJECTED", "TestWallet", "WalletError", "WalletRequest"]
