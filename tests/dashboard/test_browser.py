"""The dashboard in Chromium (Playwright): what a developer watching the page sees while
an application written for the real network runs its tasks against the sandbox."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect

from hydrogen_harness.protocol.constants import CNX
from hydrogen_harness.sandbox.core import Sandbox
from tests.dashboard.conftest import ARGS, args_json, new_app, screenshot

LIVE = 15_000  # ms: the page follows the chain within a second; this only bounds a stuck test


def task_card(page: Any, task_id: int) -> Any:
    return page.locator(f"article.task[data-task='{task_id}']")


def test_a_task_goes_from_created_to_success_with_its_images(sandbox: Sandbox, page: Any, api: httpx.Client) -> None:
    sandbox.use_nodes(["honest", "honest", "honest"])
    expect(page.locator("#live")).to_have_text("live", timeout=LIVE)
    app = new_app(sandbox)
    task_args = args_json(ARGS)
    task_id, created_block = app.create_task(task_args)
    card = task_card(page, task_id)
    # The nodes wait for the args: the task stays "created" until the app uploads them.
    expect(card).to_have_attribute("data-status", "created", timeout=LIVE)
    expect(card.locator(".facts")).to_contain_text(f"block {created_block}")
    expect(card.locator(".facts")).to_contain_text("creator")
    screenshot(page, "task-created")

    app.upload_args(task_id, task_args)
    outcome = app.wait(task_id, created_block)
    assert outcome["event"] == "TaskSuccess"
    images = [app.download(task_id, i) for i in range(len(outcome["result"]) // 8)]
    expect(card).to_have_attribute("data-status", "success", timeout=LIVE)
    thumbnails = card.locator(".images img")
    expect(thumbnails).to_have_count(len(images), timeout=LIVE)
    # The page builds a task's card anew whenever the task changes, and the result node's
    # upload report (its fee, the task deleted) may still come: an element of the card
    # found before it is gone after it ("not attached to the DOM"). So the card's last
    # change first, then its elements.
    assert sandbox.wait_until_idle()
    expect(card.locator("header")).to_contain_text("settled (deleted on chain)", timeout=LIVE)
    selector = f"article.task[data-task='{task_id}'] .images img"
    page.locator(selector).first.scroll_into_view_if_needed()
    page.wait_for_function("s => [...document.querySelectorAll(s)].every(i => i.complete && i.naturalWidth > 0)", arg=selector, timeout=LIVE)
    for index in range(len(images)):
        # Each thumbnail links to the full PNG, byte for byte what the app downloaded.
        href = card.locator(".images a").nth(index).get_attribute("href")
        assert href == f"/api/tasks/{task_id}/images/{index}"
        assert api.get(href).content == images[index]
    expect(card.locator(".facts")).to_contain_text(f"0x{bytes(outcome['result']).hex()}")
    result_node = sandbox.names[outcome["resultNode"]]
    expect(card.locator(".facts")).to_contain_text(result_node)

    card.locator("summary").click()
    timeline = card.locator("table.events")
    expect(timeline).to_contain_text("created by wallet1")
    expect(timeline).to_contain_text("commitments ready")
    expect(timeline).to_contain_text(f"success: result 0x{bytes(outcome['result']).hex()}")
    expect(timeline).to_contain_text(f"fee 10 CNX paid to {result_node}", timeout=LIVE)  # once it reported the upload
    rows = [tuple(text.split("\t")) for text in timeline.locator("tbody tr").all_inner_texts()]
    for node in sandbox.nodes:
        assert any(row[2:] == (node.name, "commit") for row in rows), rows
    first_row = timeline.locator("tbody tr").first
    expect(first_row.locator("td").first).to_have_text(str(created_block))
    screenshot(page, "task-success")


def test_a_cheater_slashed_shows_on_the_node_and_in_the_ledger(sandbox: Sandbox, page: Any) -> None:
    honest, _, cheater = sandbox.use_nodes(["honest", "honest", "cheater"])
    report = new_app(sandbox).run(ARGS)
    assert report.outcome == "success"
    assert sandbox.wait_until_idle()

    row = page.locator(f"#nodes tr[data-node='{cheater.name}']")
    expect(row).to_have_class("slashed", timeout=LIVE)
    expect(row.locator("td.slashed")).to_contain_text("400 CNX")
    expect(row.locator("td.slashed")).to_contain_text(f"in task {report.task_id}")
    expect(row).to_contain_text("quit")
    expect(row.locator("td.stake")).to_have_text("0 CNX")
    expect(row.locator("button[data-action]")).to_have_count(1)  # crash only: a node that left cannot pause
    expect(page.locator(f"#nodes tr[data-node='{honest.name}'] td.earned")).to_have_text("10 CNX")

    card = task_card(page, report.task_id)
    expect(card.locator("[data-round]", has_text=cheater.name)).to_contain_text("slashed")
    money = page.locator(f"#task-money tr[data-task='{report.task_id}']")
    # 3 fees escrowed; the two honest nodes paid; the cheater's fee back to the app; its stake slashed.
    expect(money).to_contain_text("30 CNX")
    expect(money).to_contain_text("20 CNX")
    expect(money).to_contain_text("10 CNX")
    expect(money).to_contain_text("400 CNX")
    owner = page.locator("#parties tr[data-party='owner']")
    expect(owner).to_contain_text("400 CNX")
    page.locator("#movements-box summary").click()
    slashed = page.locator("#movements tr.slashed")
    expect(slashed).to_have_count(1)
    expect(slashed).to_contain_text("stake slashed")
    expect(slashed).to_contain_text("Node contract")
    expect(slashed).to_contain_text("owner")
    row.scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "cheater-slashed")


def test_advancing_time_makes_a_stuck_task_cancellable(sandbox: Sandbox, page: Any) -> None:
    sandbox.use_nodes(["offline", "offline", "offline"])  # selected, and never act
    app = new_app(sandbox)
    task_args = args_json(ARGS)
    task_id, created_block = app.create_task(task_args)
    app.upload_args(task_id, task_args)
    card = task_card(page, task_id)
    expect(card).to_have_attribute("data-status", "created", timeout=LIVE)
    expect(card).not_to_contain_text("cancellable")
    assert "not exceeded the deadline" in _cancel_refusal(app, task_id)

    page.locator("#advance-timeout").click()  # the Task contract's timeout plus a second
    expect(page.locator("#message")).to_contain_text("past their deadline", timeout=LIVE)
    expect(card.locator(".badge.cancellable")).to_have_text("past deadline: cancellable", timeout=LIVE)
    expect(card.locator(".facts")).to_contain_text("ago")
    screenshot(page, "stuck-cancellable")

    before = app.cnx()
    app.cancel(task_id)
    assert app.cnx() == before + 30 * CNX
    expect(card).to_have_attribute("data-status", "cancelled", timeout=LIVE)
    expect(card.locator(".abort-reason")).to_have_text("Task Cancelled")
    expect(card).not_to_contain_text("cancellable")
    money = page.locator(f"#task-money tr[data-task='{task_id}']")
    expect(money.locator("td.escrow")).to_have_text("0 CNX")
    expect(money.locator("td").nth(3)).to_have_text("30 CNX")  # refunded


def _cancel_refusal(app: Any, task_id: int) -> str:
    try:
        app.cancel(task_id)
    except Exception as exc:  # TaskFailed with the revert reason
        return str(exc)
    raise AssertionError("cancelTask went through before the deadline")


def test_the_controls_work_from_the_page(sandbox: Sandbox, page: Any) -> None:
    node = sandbox.use_nodes(["honest", "honest", "honest"])[0]
    row = page.locator(f"#nodes tr[data-node='{node.name}']")
    expect(row).to_contain_text("available", timeout=LIVE)
    row.locator("button[data-action='pause']").click()
    expect(row).to_contain_text("paused", timeout=LIVE)
    expect(page.locator("#message")).to_contain_text(f"{node.name}: pause: done")
    row.locator("button[data-action='resume']").click()
    expect(row).to_contain_text("available", timeout=LIVE)

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button[data-action='crash']").click()
    expect(row).to_contain_text("crashed", timeout=LIVE)
    assert node.crashed

    page.locator("#fault-count").fill("2")
    page.locator("#fault-effect").select_option("status:503")
    page.locator("#fault-form button[type=submit]").click()
    expect(page.locator("#faults")).to_contain_text("relay: next 2 any requests → HTTP 503", timeout=LIVE)
    page.locator("#faults-clear").click()
    expect(page.locator("#faults")).to_have_text("none", timeout=LIVE)

    # Bad input is refused with the field and the reason, shown on the page.
    page.locator("#advance-seconds").fill("0")
    page.locator("#advance-seconds").evaluate("input => input.removeAttribute('min')")
    page.locator("#advance-form button[type=submit]").click()
    expect(page.locator("#message")).to_have_text("advance 0 s refused: seconds: seconds must be from 1 to 31622400, got 0")
    expect(page.locator("#message")).to_have_class("message error")


test_the_controls_work_from_the_page.refusals_expected = True  # type: ignore[attr-defined]
