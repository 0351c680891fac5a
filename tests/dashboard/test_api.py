"""The dashboard's HTTP side without a browser: the JSON API and its controls, the live
stream, what the page may load, that no key ever leaves, and that its numbers are the
chain's."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Generator
from importlib import resources
from typing import Any

import httpx
import pytest
from web3 import Web3

from hydrogen_harness.sandbox.dashboard import DashboardView
from hydrogen_harness.protocol.constants import CNX, STAKE_AMOUNT, NodeStatus
from hydrogen_harness.sandbox.core import Sandbox
from hydrogen_harness.cli.sandbox import add_sandbox_arguments
from tests.dashboard.conftest import ARGS, args_json, new_app

TRANSFER = Web3.keccak(text="Transfer(address,address,uint256)")


def refused(answer: httpx.Response, field: str, status: int = 400) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["message"] == ("validation_error" if status == 400 else "conflict")
    assert body["data"]["field_name"] == field, body
    message: str = body["data"]["message"]
    assert message
    return message


def events(api: httpx.Client) -> Generator[dict[str, Any], None, None]:
    """The `state` events of GET /api/events, parsed, as they come."""
    with api.stream("GET", "/api/events", timeout=httpx.Timeout(30, read=20)) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind, data = "", []
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
            elif line == "" and data:
                if kind == "state":
                    yield json.loads("\n".join(data))
                kind, data = "", []


# ---------------------------------------------------------------- the page


def test_the_page_loads_only_its_own_files(api: httpx.Client) -> None:
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for name, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        answer = api.get(f"/static/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
    # No third-party code and no other origin: every URL the files name is a path on this server.
    static = resources.files("hydrogen_harness.sandbox.dashboard") / "static"
    for name in ("index.html", "dashboard.js", "dashboard.css"):
        text = (static / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), name
        assert "@import" not in text and "<iframe" not in text
    js = (static / "dashboard.js").read_text()
    assert set(re.findall(r"(?:fetch|EventSource|post)\(\s*[`\"']([^`\"'$]*)", js)) <= {"/api/events", "/api/time/advance",
                                                                                       "/api/relay/faults", "/api/faults/clear",
                                                                                       "/api/nodes/"}  # fmt: skip
    assert api.get("/static/../sandbox.json").status_code == 404
    assert api.get("/static/nothing.js").status_code == 404


def test_the_sandbox_names_the_dashboard_in_its_summary_and_sandbox_json(sandbox: Sandbox, dashboard_url: str) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", dashboard_url)
    assert f"dashboard  {dashboard_url}" in sandbox.summary()
    assert json.loads(sandbox.state.info_path.read_text())["dashboard_url"] == dashboard_url


def test_the_command_line_option() -> None:
    import argparse

    parser = argparse.ArgumentParser(exit_on_error=False)
    add_sandbox_arguments(parser)
    assert parser.parse_args([]).dashboard_port == 8090
    assert parser.parse_args(["--dashboard-port", "0"]).dashboard_port == 0
    with pytest.raises(argparse.ArgumentError, match="must be from 0 to 65535"):
        parser.parse_args(["--dashboard-port", "70000"])


# ---------------------------------------------------------------- no key leaves


def test_no_private_key_appears_in_any_response(sandbox: Sandbox, api: httpx.Client) -> None:
    sandbox.use_nodes(["honest", "honest", "cheater"])
    app = new_app(sandbox)
    report = app.run(ARGS)
    assert report.outcome == "success" and sandbox.wait_until_idle()
    keys = {sandbox.info["app"]["private_key"], sandbox.info["owner"]["private_key"], app.account.key.hex()}
    keys |= {bytes(node.account.key).hex() for node in sandbox.all_nodes}
    secrets = {key.lower().removeprefix("0x") for key in keys}
    assert len(secrets) == len(sandbox.all_nodes) + 3

    bodies: list[bytes] = []
    for path in ("/", "/static/dashboard.js", "/static/dashboard.css", "/api/state",
                 f"/api/tasks/{report.task_id}/images/0", f"/api/tasks/{report.task_id}/thumbs/1",
                 "/api/tasks/99/images/0", "/api/nothing", "/sandbox.json"):  # fmt: skip
        bodies.append(api.get(path).content)
    bodies.append(json.dumps(next(events(api))).encode())
    name = sandbox.nodes[0].name
    for path, control in (("/api/time/advance", {"seconds": "x"}), (f"/api/nodes/{name}/resume", {}),
                          (f"/api/nodes/{name}/pause", {}), ("/api/relay/faults", {"count": 1, "drop": True}),
                          ("/api/faults/clear", {}), ("/api/nodes/nobody/pause", {})):  # fmt: skip
        bodies.append(api.post(path, json=control).content)
    assert all(bodies)
    for body in bodies:
        text = body.hex() + body.decode("latin-1").lower()  # the key as text, or as raw bytes
        assert not any(secret in text for secret in secrets)


# ---------------------------------------------------------------- controls


def test_advance_moves_chain_time_and_mines_a_block(sandbox: Sandbox, api: httpx.Client) -> None:
    assert sandbox.chain is not None
    before, head = sandbox.chain.now(), sandbox.chain.block_number
    answer = api.post("/api/time/advance", json={"seconds": 600})
    assert answer.status_code == 200, answer.text
    moved = answer.json()
    assert moved["time"] >= before + 600 and moved["block"] > head
    assert api.get("/api/state").json()["network"]["time"] >= before + 600


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "seconds", "seconds is required"),
        ({"seconds": 0}, "seconds", "seconds must be from 1 to 31622400, got 0"),
        ({"seconds": -5}, "seconds", "got -5"),
        ({"seconds": 10**12}, "seconds", "got 1000000000000"),
        ({"seconds": "60"}, "seconds", "must be a whole number"),
        ({"seconds": 1.5}, "seconds", "must be a whole number"),
        ({"seconds": True}, "seconds", "must be a whole number"),
        ({"seconds": None}, "seconds", "seconds is required"),
        ({"seconds": 60, "minutes": 1}, "minutes", "unknown field 'minutes'"),
        ([60], "body", "expected a JSON object"),
    ],
)
def test_advance_refuses_bad_input(api: httpx.Client, body: Any, field: str, message: str) -> None:
    assert message in refused(api.post("/api/time/advance", json=body), field)


def test_a_body_must_be_json_from_this_origin(api: httpx.Client, dashboard_url: str) -> None:
    assert "application/json" in refused(api.post("/api/time/advance", content=b'{"seconds": 1}', headers={"content-type": "text/plain"}), "content-type")
    assert "not JSON" in refused(api.post("/api/time/advance", content=b"{seconds", headers={"content-type": "application/json"}), "body")
    assert "nests" in refused(api.post("/api/time/advance", content=b"[" * 20 + b"]" * 20, headers={"content-type": "application/json"}), "body")
    assert "over" in refused(api.post("/api/time/advance", content=b" " * 20_000, headers={"content-type": "application/json"}), "body")
    foreign = api.post("/api/time/advance", json={"seconds": 1}, headers={"origin": "http://evil.example"})
    assert refused(foreign, "origin", 403)
    rebound = api.get("/api/state", headers={"host": "evil.example"})
    assert refused(rebound, "host", 403)
    assert api.post("/api/time/advance", json={"seconds": 1}, headers={"origin": dashboard_url}).status_code == 200


def test_pause_resume_and_crash_a_node(sandbox: Sandbox, api: httpx.Client) -> None:
    node = sandbox.use_nodes(["honest", "honest", "honest"])[0]
    paused = api.post(f"/api/nodes/{node.name}/pause", json={})
    assert paused.status_code == 200 and paused.json()["status"] == "PAUSED"
    assert node.status() is NodeStatus.PAUSED
    assert "PAUSED: pause needs AVAILABLE or BUSY" in refused(api.post(f"/api/nodes/{node.name}/pause", json={}), "node", 409)
    by_address = api.post(f"/api/nodes/{node.address.lower()}/resume", json={})
    assert by_address.status_code == 200 and node.status() is NodeStatus.AVAILABLE
    assert "AVAILABLE: resume needs PAUSED" in refused(api.post(f"/api/nodes/{node.name}/resume", json={}), "node", 409)
    crashed = api.post(f"/api/nodes/{node.name}/crash", json={})
    assert crashed.status_code == 200 and crashed.json()["crashed"] is True and node.crashed
    assert "has crashed" in refused(api.post(f"/api/nodes/{node.name}/pause", json={}), "node", 409)
    row = next(n for n in api.get("/api/state").json()["nodes"] if n["name"] == node.name)
    assert row["crashed"] is True and row["status"] == "available"  # still staked: it just never acts
    names = [entry.what for entry in sandbox.timeline if entry.actor == node.name]
    assert names == ["pause (dashboard)", "resume (dashboard)", "crashed (dashboard)"]


def test_node_controls_refuse_bad_input(sandbox: Sandbox, api: httpx.Client) -> None:
    assert "no simulated node 'node99': expected one of node1" in refused(api.post("/api/nodes/node99/pause", json={}), "node")
    assert "unknown node action 'stop': expected pause, resume, crash" in refused(api.post("/api/nodes/node1/stop", json={}), "action")
    assert "unknown field 'force'" in refused(api.post("/api/nodes/node1/crash", json={"force": True}), "force")
    assert not any(node.crashed for node in sandbox.all_nodes)


def test_a_relay_fault_answers_the_next_requests(sandbox: Sandbox, api: httpx.Client) -> None:
    armed = api.post("/api/relay/faults", json={"count": 2, "status": 503, "method": "get", "path": r"^/v1/inference_tasks/\d+$"})
    assert armed.status_code == 200, armed.text
    assert armed.json()["armed"] == {"count": 2, "method": "GET", "path": r"^/v1/inference_tasks/\d+$", "effect": "HTTP 503"}
    assert api.get("/api/state").json()["faults"] == [
        {"server": "relay", "method": "GET", "path": r"^/v1/inference_tasks/\d+$", "effect": "HTTP 503", "remaining": 2, "calls": 0}
    ]
    with httpx.Client(base_url=sandbox.relay_url) as relay:
        assert relay.post("/v1/inference_tasks", json={}).status_code == 400  # another path: untouched
        answers = [relay.get("/v1/inference_tasks/1").status_code for _ in range(3)]
    assert answers == [503, 503, 400]  # then the Relay itself answers (unsigned request)
    assert api.get("/api/state").json()["faults"] == []
    assert api.post("/api/relay/faults", json={"count": 5, "drop": True}).status_code == 200
    cleared = api.post("/api/faults/clear", json={})
    assert cleared.json() == {"disarmed": 1} and sandbox.faults.armed == []


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"status": 503}, "count", "count is required"),
        ({"count": 0, "status": 503}, "count", "count must be from 1 to 1000, got 0"),
        ({"count": "2", "status": 503}, "count", "must be a whole number"),
        ({"count": 1}, "status", "give exactly one of status, delay or drop: true, got none"),
        ({"count": 1, "status": 503, "drop": True}, "status", "got status, drop"),
        ({"count": 1, "status": 200}, "status", "status must be from 400 to 599, got 200"),
        ({"count": 1, "status": "503"}, "status", "must be a whole number"),
        ({"count": 1, "delay": 0}, "delay", "more than 0"),
        ({"count": 1, "delay": 31}, "delay", "at most 30 seconds"),
        ({"count": 1, "delay": "1"}, "delay", "must be a number of seconds"),
        ({"count": 1, "drop": "yes"}, "drop", "drop must be true or absent"),
        ({"count": 1, "drop": True, "method": "DELETE"}, "method", "method must be GET or POST"),
        ({"count": 1, "drop": True, "path": "(unclosed"}, "path", "not a valid regular expression"),
        ({"count": 1, "drop": True, "path": "x" * 201}, "path", "at most 200 characters"),
        ({"count": 1, "drop": True, "path": 5}, "path", "regular expression"),
        ({"count": 1, "drop": True, "server": "rpc"}, "server", "unknown field 'server'"),
        ("drop", "body", "expected a JSON object, got str"),
    ],
)
def test_a_relay_fault_refuses_bad_input(sandbox: Sandbox, api: httpx.Client, body: Any, field: str, message: str) -> None:
    assert message in refused(api.post("/api/relay/faults", json=body), field)
    assert sandbox.faults.armed == []  # nothing half-armed


def test_unknown_paths_and_images_answer_404(api: httpx.Client) -> None:
    assert refused(api.get("/api/nothing"), "path", 404)
    assert refused(api.get("/api/tasks/1/images/0"), "n", 404)
    assert "task_id must be a whole number" in refused(api.get("/api/tasks/x/images/0"), "task_id")
    assert refused(api.get("/api/time/advance"), "path", 404)  # a control is a POST


# ---------------------------------------------------------------- live and true


def test_the_stream_sends_a_state_after_each_block(sandbox: Sandbox, api: httpx.Client) -> None:
    stream = events(api)
    first = next(stream)
    assert set(first) >= {"network", "tasks", "nodes", "ledger", "faults", "activity"}
    assert sandbox.chain is not None
    mined = []
    for _ in range(3):
        sandbox.advance(5)
        mined.append(sandbox.chain.block_number)
        deadline = time.monotonic() + 10
        while next(stream)["network"]["block"] < mined[-1]:
            assert time.monotonic() < deadline, f"no state for block {mined[-1]}"
    stream.close()


def test_the_dashboard_numbers_are_the_chain_numbers(sandbox: Sandbox, api: httpx.Client) -> None:
    sandbox.use_nodes(["honest", "honest", "cheater"])
    app = new_app(sandbox)
    assert app.run(ARGS).outcome == "success"
    sandbox.use_nodes(["offline", "offline", "offline"])
    stuck_id, _ = app.create_task(args_json({**ARGS, "prompt": "a stuck task"}))  # its escrow stays
    assert sandbox.wait_until_idle()

    state = api.get("/api/state").json()
    block = state["network"]["block"]
    w3 = Web3(Web3.HTTPProvider(sandbox.rpc_url))
    token, registry, tasks = (w3.eth.contract(address=sandbox.addresses[n], abi=sandbox.abi(n)) for n in ("token", "node", "task"))

    def balance(address: str) -> int:
        return int(token.functions.balanceOf(address).call(block_identifier=block))

    def fees_to(address: str) -> int:
        logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": block, "address": token.address,
                                "topics": [TRANSFER, "0x" + bytes(12).hex() + tasks.address[2:].lower(),
                                           "0x" + bytes(12).hex() + address[2:].lower()]})  # fmt: skip
        return sum(int.from_bytes(bytes(log["data"]), "big") for log in logs)

    assert state["counts"]["tasks"] == tasks.functions.totalTasks().call(block_identifier=block) == 2
    assert int(state["ledger"]["escrow_now"]) == balance(tasks.address) == 30 * CNX
    assert state["network"]["task_fee"] == str(tasks.functions.taskFeePerNode().call(block_identifier=block))
    assert state["network"]["timeout"] == tasks.functions.timeout().call(block_identifier=block)
    slashed = 0
    for row in state["nodes"]:
        status = NodeStatus(registry.functions.getNodeStatus(row["address"]).call(block_identifier=block))
        assert row["status"] == status.name.lower().replace("_", " ")
        assert int(row["balance"]) == balance(row["address"])
        assert int(row["stake"]) == (0 if status is NodeStatus.QUIT else STAKE_AMOUNT)
        assert int(row["earned"]) == fees_to(row["address"])
        assert row["task"] == tasks.functions.getNodeTask(row["address"]).call(block_identifier=block)
        slashed += int(row["slashed"])
    assert slashed == STAKE_AMOUNT
    for party in state["ledger"]["parties"]:
        assert int(party["balance"]) == balance(party["address"]), party["name"]
    for task in state["tasks"]:
        info = tasks.functions.getTask(task["id"]).call(block_identifier=block)
        assert task["on_chain"] == (info[0] != 0)
        assert int(task["escrow_now"]) == info[13]
        assert task["deadline"] == (info[12] if info[0] else task["deadline"])
    by_task = {row["task_id"]: row for row in state["ledger"]["tasks"]}
    assert int(by_task[stuck_id]["escrow_now"]) == tasks.functions.getTask(stuck_id).call(block_identifier=block)[13]
    assert sum(int(row["escrow_now"]) for row in by_task.values()) == balance(tasks.address)


def test_a_chain_taken_back_is_forgotten(sandbox: Sandbox, api: httpx.Client) -> None:
    with sandbox.isolated(["honest", "honest", "honest"]):
        app = new_app(sandbox)
        task_id, _ = app.create_task(args_json(ARGS))
        assert [t["id"] for t in api.get("/api/state").json()["tasks"]] == [task_id]
    state = api.get("/api/state").json()
    assert state["tasks"] == [] and state["counts"]["tasks"] == 0
    assert all(int(node["earned"]) == 0 for node in state["nodes"])


def test_a_transfer_read_ahead_of_its_task_is_still_the_task_s(sandbox: Sandbox) -> None:
    """The ledger reads up to the head it finds, which may be past the block the view
    started from: the task created in between still gets its escrow."""
    sandbox.use_nodes(["offline", "offline", "offline"])
    app = new_app(sandbox)
    view = DashboardView(sandbox)
    view.refresh()
    ledger = view._ledger
    assert ledger is not None
    created: list[int] = []
    real_sync = ledger.sync

    def sync_after_a_task() -> Any:
        if not created:  # a block mined between the view's head and the ledger's read
            created.append(app.create_task(args_json(ARGS))[0])
        return real_sync()

    ledger.sync = sync_after_a_task  # type: ignore[method-assign]
    sandbox.advance(1)  # something new, so the view reads on
    state = view.refresh()
    money = {row["task_id"]: row for row in state["ledger"]["tasks"]}
    assert money[created[0]]["escrowed"] == money[created[0]]["escrow_now"] == str(30 * CNX)
    assert [t["id"] for t in state["tasks"]] == created and state["tasks"][0]["escrow_now"] == str(30 * CNX)
