"""The example application (examples/cnx_app: web3 + httpx, as for the real network)
driving a sandbox from these tests, and the chain-wide checks made after a restart."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_APP = ROOT / "examples" / "cnx_app"
if str(EXAMPLE_APP) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_APP))

from cnx_app import CnxApp, TaskFailed, args_json, sign_request  # noqa: E402  (put on the path above)

__all__ = ["ARGS", "CnxApp", "TaskFailed", "app_for", "args_json", "contracts_of", "live_task_balances", "sign_request"]

ARGS = {"base_model": "runwayml/stable-diffusion-v1-5", "prompt": "a red fox in snow",
        "task_config": {"num_images": 2, "image_width": 64, "image_height": 64}}  # fmt: skip
_TASK_INFO_ID, _TASK_INFO_BALANCE = 0, 13  # getTask's tuple: id, ..., balance


def app_for(info: dict[str, Any], key: str, **options: Any) -> CnxApp:
    """The example application on the sandbox described by `info` (its sandbox.json)."""
    contracts = info["contracts"]
    return CnxApp(info["rpc_url"], info["relay_url"], contracts["token"], contracts["task"], key, **options)


def contracts_of(info: dict[str, Any]) -> tuple[Web3, Any, Any, Any]:
    """(w3, token, node, task) over JSON-RPC, from sandbox.json."""
    w3 = Web3(Web3.HTTPProvider(info["rpc_url"], request_kwargs={"timeout": 30}))
    token, node, task = (w3.eth.contract(address=info["contracts"][n], abi=info["abi"][n]) for n in ("token", "node", "task"))
    return w3, token, node, task


def live_task_balances(task: Any) -> dict[int, int]:
    """Escrow of every task the contract still holds (ids 1..totalTasks), by id."""
    balances = {}
    for task_id in range(1, task.functions.totalTasks().call() + 1):
        info = task.functions.getTask(task_id).call()
        if info[_TASK_INFO_ID] != 0:
            balances[task_id] = int(info[_TASK_INFO_BALANCE])
    return balances
