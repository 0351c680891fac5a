"""hydrogen-harness: test and simulate applications of the Crynux Hydrogen Network.

The names below are the public API. They load on first use (PEP 562): pytest imports
this package with the plugin in every session, so `import hydrogen_harness` must not
pull in web3, eth-tester or vyper.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hydrogen_harness.chain.chain import Chain
    from hydrogen_harness.chain.contracts import Deployment, deploy
    from hydrogen_harness.client.app import Application, TaskOutcome, TaskResult
    from hydrogen_harness.fakes.node import SimulatedNode
    from hydrogen_harness.fakes.relay import RelayService
    from hydrogen_harness.plugin import expect_revert
    from hydrogen_harness.protocol.constants import CNX
    from hydrogen_harness.protocol.reverts import RevertError
    from hydrogen_harness.sandbox.core import Sandbox
    from hydrogen_harness.sim.network import Network
    from hydrogen_harness.wallet.wallet import TestWallet

__version__ = "0.1.0"

# Each public name and the module that defines it.
_SOURCES = {
    "Application": "hydrogen_harness.client.app",
    "CNX": "hydrogen_harness.protocol.constants",
    "Chain": "hydrogen_harness.chain.chain",
    "Deployment": "hydrogen_harness.chain.contracts",
    "Network": "hydrogen_harness.sim.network",
    "RelayService": "hydrogen_harness.fakes.relay",
    "RevertError": "hydrogen_harness.protocol.reverts",
    "Sandbox": "hydrogen_harness.sandbox.core",
    "SimulatedNode": "hydrogen_harness.fakes.node",
    "TaskOutcome": "hydrogen_harness.client.app",
    "TaskResult": "hydrogen_harness.client.app",
    "TestWallet": "hydrogen_harness.wallet.wallet",
    "deploy": "hydrogen_harness.chain.contracts",
    "expect_revert": "hydrogen_harness.plugin",
}

__all__ = [
    "CNX",
    "Application",
    "Chain",
    "Deployment",
    "Network",
    "RelayService",
    "RevertError",
    "Sandbox",
    "SimulatedNode",
    "TaskOutcome",
    "TaskResult",
    "TestWallet",
    "__version__",
    "deploy",
    "expect_revert",
]


# Run time only: to type checkers the names are the imports above, so a misspelt one is an error.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        source = _SOURCES.get(name)
        if source is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(source), name)
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
