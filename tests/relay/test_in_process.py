"""The in-process transport: where the Relay's blocking work runs, from plain code and
from inside a running event loop."""

from __future__ import annotations

import asyncio
import threading

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from hydrogen_harness.fakes.relay.blocking import run_blocking
from hydrogen_harness.fakes.relay.transport import in_process_client


def _thread_reporting_app() -> FastAPI:
    """An app whose endpoint answers with the thread its blocking work ran on."""
    app = FastAPI()

    @app.get("/thread")
    async def thread() -> JSONResponse:
        return JSONResponse({"ident": await run_blocking(threading.get_ident)})

    @app.get("/boom")
    async def boom() -> JSONResponse:
        await run_blocking(_fail)
        return JSONResponse({})

    return app


def _fail() -> None:
    raise RuntimeError("a bug in a handler")


def test_plain_callers_run_the_blocking_work_on_their_own_thread() -> None:
    with in_process_client(_thread_reporting_app()) as client:
        assert client.get("/thread").json()["ident"] == threading.get_ident()
        seen: list[int] = []
        worker = threading.Thread(target=lambda: seen.append(client.get("/thread").json()["ident"]))
        worker.start()
        worker.join()
        assert seen == [worker.ident]  # each calling thread has a loop of its own


def test_a_caller_inside_an_event_loop_gets_its_answer_from_another_thread() -> None:
    async def inside_a_loop(client: httpx.Client) -> tuple[int, int, int]:
        # A sync client inside a coroutine: the caller's loop is busy, so the app
        # must not try to run on it (asyncio would refuse a nested run).
        answer = client.get("/thread")
        return answer.status_code, answer.json()["ident"], threading.get_ident()

    with in_process_client(_thread_reporting_app()) as client:
        status, ran_on, caller = asyncio.run(inside_a_loop(client))
        assert status == 200 and ran_on != caller
        # and plain calls on the same client still work afterwards
        assert client.get("/thread").json()["ident"] == threading.get_ident()


def test_a_handler_bug_is_a_500_answer_on_both_paths() -> None:
    async def inside_a_loop(client: httpx.Client) -> int:
        return client.get("/boom").status_code

    with in_process_client(_thread_reporting_app()) as client:
        assert client.get("/boom").status_code == 500
        assert asyncio.run(inside_a_loop(client)) == 500


def test_close_closes_the_loops_it_opened_for_callers() -> None:
    client = in_process_client(_thread_reporting_app())
    transport = client._transport
    client.get("/thread")
    loops = list(transport._all_caller_loops)  # type: ignore[attr-defined]
    assert len(loops) == 1 and not loops[0].is_closed()
    client.close()
    assert loops[0].is_closed()
