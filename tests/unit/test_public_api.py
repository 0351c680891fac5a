"""The package's public names, and the promise that importing it (or the plugin) is cheap."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

import hydrogen_harness

# Where each public name is defined: `hydrogen_harness.X` must be that very object.
DEFINED_IN = {
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

# Top-level modules that cost a pytest session a second or more between them.
HEAVY = ("web3", "eth_tester", "eth", "eth_account", "vyper", "fastapi", "playwright")


def _modules_after(statement: str) -> set[str]:
    """Top-level names in sys.modules after `statement` in a fresh interpreter."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_all_lists_exactly_the_public_names() -> None:
    assert sorted(hydrogen_harness.__all__) == sorted([*DEFINED_IN, "__version__"])
    assert hydrogen_harness.__version__ == "0.1.0"


@pytest.mark.parametrize("name", sorted(DEFINED_IN))
def test_each_name_is_the_object_of_its_defining_module(name: str) -> None:
    assert getattr(hydrogen_harness, name) is getattr(importlib.import_module(DEFINED_IN[name]), name)


def test_expect_revert_catches_the_public_revert_error() -> None:
    with hydrogen_harness.expect_revert("Not enough nodes") as caught:
        raise hydrogen_harness.RevertError("Not enough nodes")
    assert type(caught[0]) is hydrogen_harness.RevertError


def test_an_unknown_name_raises_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(hydrogen_harness, "no_such_name")  # noqa: B009 (a type checker rejects the plain attribute)


def test_dir_lists_the_public_names() -> None:
    assert set(hydrogen_harness.__all__) <= set(dir(hydrogen_harness))


def test_importing_the_package_loads_no_chain_library() -> None:
    loaded = _modules_after("import hydrogen_harness")
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_loading_the_plugin_loads_no_chain_library() -> None:
    # pytest imports the plugin in every session of a project that installed us.
    loaded = _modules_after("import hydrogen_harness.plugin")
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
