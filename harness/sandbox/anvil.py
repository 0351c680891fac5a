"""Starting anvil (Foundry's dev node) for `hydrogen-harness sandbox --anvil`.

The binary comes from the npm package @foundry-rs/anvil-linux-amd64, installed
into the project with `npm install --ignore-scripts --prefix .cache/anvil
@foundry-rs/anvil-linux-amd64@VERSION` (.ci/run does it); `HYDROGEN_ANVIL` or an
`anvil` on PATH work too. It runs with what H-net clients need (PROTOCOL.md 7):
a 60M block gas limit for their ~43M-gas legacy transactions, and a base fee
and gas price of 1 wei. The hardfork is pinned to Prague, the EVM version the
contracts are compiled for, which also predates EIP-7825's cap of 2**24 gas per
transaction (H-net's clients send more).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from hydrogen_harness.chain.determinism import BLOCK_GAS_LIMIT
from hydrogen_harness.client.tls import shared_tls_context

__all__ = ["ANVIL_FIRST_KEY", "ANVIL_VERSION", "AnvilProcess", "find_anvil", "start_anvil"]

ANVIL_VERSION = "1.7.1"  # the version .ci/run installs
ANVIL_FIRST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
"""The first of anvil's (and hardhat's) well-known dev accounts, funded with 10,000 ETH."""

_PACKAGE_GLOB = "node_modules/@foundry-rs/anvil-*/bin/anvil"


def find_anvil(project_root: Path | None = None) -> Path | None:
    """The anvil binary: $HYDROGEN_ANVIL, else .cache/anvil's npm package, else PATH."""
    configured = os.environ.get("HYDROGEN_ANVIL")
    if configured:
        path = Path(configured)
        return path if path.is_file() else None
    root = project_root or Path(__file__).resolve().parents[2]  # the repository, in a checkout
    for candidate in sorted((root / ".cache" / "anvil").glob(_PACKAGE_GLOB)):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("anvil")
    return Path(found) if found else None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class AnvilProcess:
    """A running anvil; `stop()` ends it (SIGTERM, then SIGKILL after `grace` s)."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def stop(self, grace: float = 2.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=grace)


def start_anvil(
    binary: Path,
    log_path: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 20.0,
    chain_id: int | None = None,
) -> AnvilProcess:
    """Start anvil on `host`:`port` (0: a free port) and wait until it answers eth_chainId;
    `chain_id` replaces anvil's own (31337)."""
    port = port or _free_port(host)
    command = [
        str(binary),
        "--host", host,
        "--port", str(port),
        "--hardfork", "prague",
        "--gas-limit", str(BLOCK_GAS_LIMIT),  # as the in-memory chains
        "--block-base-fee-per-gas", "1",
        "--gas-price", "1",
        *(["--chain-id", str(chain_id)] if chain_id is not None else []),
    ]  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    anvil = AnvilProcess(process=process, url=f"http://{host}:{port}", log_path=log_path)
    deadline = time.monotonic() + startup_timeout
    with httpx.Client(timeout=1.0, verify=shared_tls_context()) as http:
        while True:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
                raise RuntimeError(f"anvil exited with code {process.returncode} during start-up ({tail[0]}); see {log_path}")
            try:
                answer = http.post(anvil.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
                if answer.status_code == 200 and "result" in answer.json():
                    return anvil
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                anvil.stop()
                raise TimeoutError(f"anvil did not answer within {startup_timeout} s; see {log_path}")
            time.sleep(0.05)
