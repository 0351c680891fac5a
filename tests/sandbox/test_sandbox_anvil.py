"""The same example application against `hydrogen-harness sandbox --anvil`."""

from __future__ import annotations

import io
import signal
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from hydrogen_harness.protocol.phash import result_bytes
from hydrogen_harness.sandbox.anvil import ANVIL_VERSION, find_anvil
from tests.sandbox.conftest import SandboxProcess, start_sandbox
from tests.sandbox.test_sandbox import assert_clean_stop, on_chain_outcome, run_example

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_anvil() is None,
        reason="anvil binary not found: install it with `npm install --ignore-scripts --prefix .cache/anvil "
        f"@foundry-rs/anvil-linux-amd64@{ANVIL_VERSION}` (.ci/run does), or set HYDROGEN_ANVIL",
    ),
]


def test_workflow_on_anvil(tmp_path: Path, sandboxes: list[SandboxProcess], example: ModuleType) -> None:
    running = start_sandbox(tmp_path / "state", "--anvil", "--nodes", "4")
    sandboxes.append(running)
    assert running.info["chain"] == "anvil" and running.info["chain_id"] == 31337
    report = run_example(example, running, tmp_path / "images")
    assert report["outcome"] == "success"
    images = [Path(path).read_bytes() for path in report["images"]]
    for image in images:
        Image.open(io.BytesIO(image)).verify()
    assert result_bytes(images) == bytes(on_chain_outcome(running.info, report["task_id"])["result"])
    assert_clean_stop(running, signal.SIGINT)  # the RPC port closing means anvil is gone too
