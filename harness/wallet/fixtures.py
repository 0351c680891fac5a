"""pytest fixtures of the test wallet, registered by hydrogen_harness.plugin (see `pytest --fixtures`).

Playwright (sync API) drives Debian's Chromium (`shutil.which("chromium")`); Playwright's
own browser download is never used. Without Chromium the browser tests skip and say how
to install it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# hydrogen_harness.plugin imports this module in every pytest session: eth-account and the
# wallet (httpx) load only once a wallet fixture runs.
if TYPE_CHECKING:
    from hydrogen_harness.sandbox.core import Sandbox
    from hydrogen_harness.wallet.wallet import TestWallet

__all__ = ["CHROMIUM_ARGS", "INSTALL_CHROMIUM", "failure_sections", "hydrogen_browser", "hydrogen_dapp_page", "hydrogen_open_dapp", "hydrogen_wallet"]

INSTALL_CHROMIUM = "apt-get install chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # Without these Chromium phones home at start, which a closed network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def hydrogen_browser() -> Iterator[Any]:
    """Headless Chromium (Debian's, found on PATH) driven by Playwright's sync API, one
    per test module (while it is open, Playwright runs an event loop in the test's
    thread). Skips, naming the install command, when Chromium is missing."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip(f"Debian's chromium is not installed ({INSTALL_CHROMIUM}): the wallet's browser tests need it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install 'hydrogen-harness[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def hydrogen_wallet(hydrogen_sandbox: Sandbox) -> Iterator[TestWallet]:
    """The test wallet's control object, on `hydrogen_sandbox`'s chain, holding one
    account funded with 1,000 CNX and 10 ETH (`address`; more with `new_account(cnx=,
    eth=)`). `reject(method=None, count=1)` makes the next requests fail with EIP-1193
    code 4001 (as a user clicking Reject); `switch_account(i)` / `switch_chain(id,
    rpc_url)` emit `accountsChanged` / `chainChanged`; `requests` records every request
    (`method`, `params`, `outcome` "ok"/"rejected"/"error", `result`, `error`), and
    `calls(method)` those of one method. `eth_sign` answers v = 27/28 (as MetaMask):
    the Relay wants 0/1."""
    from eth_account import Account

    from hydrogen_harness.wallet.wallet import TestWallet

    def fund(cnx: int, eth: int) -> Any:
        return Account.from_key(hydrogen_sandbox.new_wallet(cnx=cnx, eth=eth).key)

    wallet = TestWallet(hydrogen_sandbox.rpc_url, hydrogen_sandbox.chain_id, [fund(1_000 * 10**18, 10 * 10**18)], funder=fund)
    try:
        yield wallet
    finally:
        wallet.close()


@pytest.fixture
def hydrogen_dapp_page(hydrogen_browser: Any, hydrogen_wallet: TestWallet) -> Iterator[Any]:
    """A Playwright page (1280x900) whose every document gets the test wallet as
    `window.ethereum` (and EIP-6963 announcements) before its own scripts run, wired to
    `hydrogen_sandbox`. Not navigated yet: `page.goto(url)`, or use `hydrogen_open_dapp`.
    On failure the report gets a screenshot path and the wallet's request log."""
    context = hydrogen_browser.new_context(viewport={"width": 1280, "height": 900})
    hydrogen_wallet.install(context)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def hydrogen_open_dapp(hydrogen_dapp_page: Any, hydrogen_sandbox: Sandbox) -> Callable[..., Any]:
    """`hydrogen_open_dapp(url=None)`: open your DApp's URL (default: the reference DApp
    the sandbox serves at `hydrogen_sandbox.dapp_url`) in `hydrogen_dapp_page`, wallet
    injected; returns the page."""

    def open_dapp(url: str | None = None) -> Any:
        hydrogen_dapp_page.goto(url or hydrogen_sandbox.dapp_url)
        return hydrogen_dapp_page

    return open_dapp


def failure_sections(item: pytest.Item) -> list[tuple[str, str]]:
    """For a failing test: a screenshot of `hydrogen_dapp_page` and the wallet's requests."""
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    sections: list[tuple[str, str]] = []
    page = funcargs.get("hydrogen_dapp_page")
    if page is not None and not page.is_closed():
        folder = Path(str(item.config.rootpath)) / "out" / "hydrogen-failures"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-120:] + ".png")
        page.screenshot(path=str(path))
        sections.append(("hydrogen wallet screenshot", f"{path} (page {page.url})"))
    wallet = funcargs.get("hydrogen_wallet")
    if wallet is not None:
        sections.append(("hydrogen wallet requests", wallet.log_text()))
    return sections
