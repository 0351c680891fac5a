"""Fixtures of the dashboard tests: one sandbox serving its dashboard (each test runs in
its own snapshot, as `hydrogen_sandbox` tests do), an application written as for the
real network (examples/cnx_app), and Chromium driven by Playwright.

The browser tests need Debian's Chromium (`apt-get install chromium`) and Playwright
for Python (the `dev` extras); without Chromium they skip and say so.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hydrogen_harness.client.tls import shared_tls_context
from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.sandbox.core import Sandbox, SandboxOptions

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_APP = ROOT / "examples" / "cnx_app"
if str(EXAMPLE_APP) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_APP))

from cnx_app import CnxApp, args_json  # noqa: E402  (examples/cnx_app, put on the path above)

OUT = ROOT / "out" / "dashboard"
# Three of each useful kind: a test makes exactly the three it needs available.
POOL = ["honest", "honest", "honest", "cheater", "offline", "offline", "offline"]
ARGS = {"base_model": "runwayml/stable-diffusion-v1-5", "prompt": "a red fox in snow",
        "task_config": {"num_images": 2, "image_width": 128, "image_height": 128, "seed": 7}}  # fmt: skip
__all__ = ["ARGS", "OUT", "CnxApp", "args_json"]


@pytest.fixture(scope="session")
def dashboard_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    options = dataclasses.replace(SandboxOptions.for_tests(tmp_path_factory.mktemp("dashboard"), POOL), dashboard_port=0)
    with Sandbox(options, log=lambda line: None) as sandbox:
        # The base state every test starts from: no node available. Paused once here, the
        # snapshot of each test already has it (seven pause transactions a test otherwise).
        sandbox.use_nodes([])
        yield sandbox


@pytest.fixture
def sandbox(dashboard_sandbox: Sandbox) -> Iterator[Sandbox]:
    """The dashboard's sandbox, put back as it was after the test (chain, Relay, nodes)."""
    with dashboard_sandbox.isolated([]):
        yield dashboard_sandbox


@pytest.fixture
def dashboard_url(sandbox: Sandbox) -> str:
    return str(sandbox.info["dashboard_url"])


@pytest.fixture
def api(dashboard_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard_url, timeout=30, verify=shared_tls_context()) as client:
        yield client


def new_app(sandbox: Sandbox, cnx: int = 200 * CNX) -> CnxApp:
    wallet = sandbox.new_wallet(cnx=cnx)
    return CnxApp(sandbox.rpc_url, sandbox.relay_url, sandbox.addresses["token"], sandbox.addresses["task"], wallet.key, poll=0.05)


def post(api: httpx.Client, path: str, body: Any) -> httpx.Response:
    return api.post(path, json=body)


# ---------------------------------------------------------------- the browser


@pytest.fixture
def browser(hydrogen_browser: Any) -> Any:
    """The plugin's headless Chromium (one per module: Playwright's sync API runs an event
    loop in this thread while it is open, and other tests in the same worker call asyncio.run)."""
    return hydrogen_browser


@pytest.fixture
def page(browser: Any, dashboard_url: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The dashboard open in a laptop-sized window; fails the test on any console error
    (a script error, a request the page's content security policy refused), except the
    browser's note of a refused control in a test marked `refusals_expected = True`."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on("console", lambda message: problems.append(f"console {message.type}: {message.text}") if message.type == "error" else None)
    opened.goto(dashboard_url)
    try:
        yield opened
    finally:
        context.close()
    if getattr(request.function, "refusals_expected", False):
        problems = [p for p in problems if "server responded with a status of 400" not in p]
    assert not problems, problems


def screenshot(page: Any, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path))
    return path
