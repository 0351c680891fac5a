"""Helpers of the end-to-end tests: small task args and a restartable app, and the
chain under their in-process network.

These tests check the application client, the nodes and the Relay, not the chain, so
the plugin's `hydrogen_contracts` and `hydrogen_network` (and `hydrogen_app`,
`hydrogen_nodes`, `hydrogen_relay` on top of it) stand here on the revm deployment:
the directory takes seconds instead of half a minute. revm gives what eth-tester
gives (test_backends_agree.py runs one seeded simulation on both); the users' suites
of test_plugin.py and the sandbox tests keep the eth-tester path covered, and
`--e2e-on session` puts these tests back on the session's chain.
"""

from __future__ import annotations

from typing import Any

import pytest

from hydrogen_harness.chain.contracts import Deployment
from hydrogen_harness.client.app import Application
from hydrogen_harness.client.store import ProgressStore
from hydrogen_harness.sim.network import Network


@pytest.fixture(scope="session")
def _hydrogen_session_deployment(request: pytest.FixtureRequest) -> Deployment:
    # The plugin's fixtures of the in-process network all stand on this one: overriding
    # it here moves them together, each test still isolated in its own snapshot.
    if request.config.getoption("--e2e-on") == "session":
        session: Deployment = request.getfixturevalue("_hydrogen_session_deployment")  # the plugin's
        return session
    revm: Deployment = request.getfixturevalue("revm_deployment")
    return revm


def small_args(prompt: str = "a lighthouse at dusk", images: int = 2, size: int = 64, **config: Any) -> dict[str, Any]:
    """Task args that generate quickly (64x64 images)."""
    return {
        "base_model": "runwayml/stable-diffusion-v1-5",
        "prompt": prompt,
        "task_config": {"image_width": size, "image_height": size, "num_images": images, "seed": 42, **config},
    }


@pytest.fixture
def args() -> dict[str, Any]:
    return small_args()


class Crash(Exception):
    """Raised at an application checkpoint to simulate the process dying there."""


def crash_at(app: Application, point: str) -> None:
    def checkpoint(name: str, job: Any) -> None:
        if name == point:
            raise Crash(point)

    app._checkpoint = checkpoint  # type: ignore[method-assign]


def restart(network: Network, app: Application, store_path: Any) -> Application:
    """Replace `app` by a new process of the same wallet reading the same progress file."""
    again = Application(
        network.contracts,
        app.account,
        network.relay_client(app.name + "'"),
        store=ProgressStore(store_path),
        name=app.name + "'",
    )
    network.apps[network.apps.index(app)] = again
    return again
