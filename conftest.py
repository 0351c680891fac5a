"""Root conftest: the hydrogen-harness plugin comes from its pytest11 entry point,
so nothing needs registering here; this file pins the test root for pytest and
holds the project's own command-line options (pytest reads them only here)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--contracts-on",
        choices=("revm", "session"),
        default="revm",
        help="the chain of tests/contracts' `contracts` fixture: revm (default; the tests marked "
        "eth_tester stay on the session's chain), or the session's chain for all of them (eth-tester, "
        "or what --hydrogen-backend / --hydrogen-rpc-url name)",
    )
    parser.addoption(
        "--e2e-on",
        choices=("revm", "session"),
        default="revm",
        help="the chain under tests/e2e's in-process network (hydrogen_contracts, hydrogen_network and "
        "what hangs on them): revm (default), or the session's chain (eth-tester, or what "
        "--hydrogen-backend / --hydrogen-rpc-url name)",
    )
