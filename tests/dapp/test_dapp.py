"""The reference DApp (harness/dapp) in headless Chromium with the test wallet, against
`hydrogen_sandbox`: the whole workflow, rejections, a revert, an account switch."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from web3 import Web3

from hydrogen_harness.protocol.phash import phash
from hydrogen_harness.wallet import USER_REJECTED, TestWallet

OUT = Path(__file__).resolve().parents[2] / "out" / "dapp"
CNX = 10**18
TIMEOUT = 60_000  # ms


def shot(page: Any, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def contracts(sandbox: Any) -> tuple[Any, Any, Any]:
    w3 = Web3(Web3.HTTPProvider(sandbox.rpc_url))
    token = w3.eth.contract(address=sandbox.addresses["token"], abi=sandbox.abi("token"))
    task = w3.eth.contract(address=sandbox.addresses["task"], abi=sandbox.abi("task"))
    return w3, token, task


def connect(page: Any, wallet: TestWallet) -> None:
    page.wait_for_selector("body[data-ready=true]")
    page.click("#connect")
    page.wait_for_function("a => document.getElementById('account').textContent === a", arg=wallet.address.lower())
    page.wait_for_selector("#cnx[data-wei]")


def approve(page: Any) -> None:
    page.click("#approve")
    page.wait_for_function("() => /Approved/.test(document.getElementById('status').textContent)", timeout=TIMEOUT)


def wait_done(page: Any) -> str:
    """The status once the task succeeded, or the error shown."""
    page.wait_for_function(
        "() => /succeeded/.test(document.getElementById('status').textContent) || !document.getElementById('error').hidden",
        timeout=TIMEOUT,
    )
    error = page.locator("#error")
    return error.text_content() if error.is_visible() else page.locator("#status").text_content()


def displayed_images(page: Any) -> list[bytes]:
    encoded = page.evaluate(
        """async () => Promise.all([...document.querySelectorAll('#images img')].map(async (img) => {
            const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
            let text = ''; for (const b of bytes) text += String.fromCharCode(b); return btoa(text); }))"""
    )
    return [base64.b64decode(e) for e in encoded]


def relay_requests(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda request: seen.append(f"{request.method} {request.url}") if "/v1/" in request.url else None)
    return seen


def test_the_dapp_runs_a_task_end_to_end_and_shows_the_images(hydrogen_sandbox, hydrogen_wallet, hydrogen_open_dapp):
    page = hydrogen_open_dapp()
    connect(page, hydrogen_wallet)
    approve(page)
    page.click("#create")
    assert "succeeded: 2 images" in wait_done(page)
    shot(page, "end_to_end")

    _, token, task = contracts(hydrogen_sandbox)
    task_id = int(page.locator("#task-id").get_attribute("data-task-id"))
    (success,) = [e for e in task.events.TaskSuccess().get_logs(from_block=0) if e["args"]["taskId"] == task_id]
    result = bytes(success["args"]["result"])
    images = displayed_images(page)
    assert len(images) == len(result) // 8 == 2
    assert b"".join(phash(image) for image in images) == result
    # The page shows what the chain says.
    assert int(page.locator("#cnx").get_attribute("data-wei")) == token.functions.balanceOf(hydrogen_wallet.address).call()

    sent = hydrogen_wallet.calls("eth_sendTransaction")
    assert [r.outcome for r in sent] == ["ok", "ok"]
    assert [r.params[0]["to"].lower() for r in sent] == [token.address.lower(), task.address.lower()]
    signs = hydrogen_wallet.calls("eth_sign")
    assert len(signs) >= 3 and all(r.outcome == "ok" and r.params[0] == hydrogen_wallet.address.lower() for r in signs)
    assert all(len(r.result) == 132 and r.result[-2:] in ("1b", "1c") for r in signs)  # v 27/28, as MetaMask
    assert hydrogen_wallet.calls("eth_requestAccounts")[0].outcome == "ok"


def test_rejecting_create_task_shows_the_message_and_moves_nothing(hydrogen_sandbox, hydrogen_wallet, hydrogen_open_dapp):
    _, token, task = contracts(hydrogen_sandbox)
    page = hydrogen_open_dapp()
    connect(page, hydrogen_wallet)
    approve(page)
    before = token.functions.balanceOf(hydrogen_wallet.address).call()
    allowance = token.functions.allowance(hydrogen_wallet.address, task.address).call()
    hydrogen_wallet.reject("eth_sendTransaction")
    page.click("#create")
    message = wait_done(page)
    shot(page, "create_task_rejected")
    assert "You rejected creating the task in your wallet" in message
    assert task.functions.totalTasks().call() == 0
    assert token.functions.balanceOf(hydrogen_wallet.address).call() == before
    # approve-then-reject: the allowance stays, and the page shows the chain's value.
    assert allowance == 30 * CNX
    assert token.functions.allowance(hydrogen_wallet.address, task.address).call() == allowance
    assert int(page.locator("#allowance").get_attribute("data-wei")) == allowance
    assert [r.outcome for r in hydrogen_wallet.calls("eth_sendTransaction")] == ["ok", "rejected"]
    assert hydrogen_wallet.calls("eth_sendTransaction")[1].error == {"code": USER_REJECTED, "message": "User rejected the request."}
    assert not hydrogen_wallet.calls("eth_sign")


def test_a_rejected_upload_signature_shows_the_message_and_sends_nothing(hydrogen_sandbox, hydrogen_wallet, hydrogen_open_dapp):
    page = hydrogen_open_dapp()
    seen = relay_requests(page)
    connect(page, hydrogen_wallet)
    approve(page)
    hydrogen_wallet.reject("eth_sign")
    page.click("#create")
    message = wait_done(page)
    shot(page, "signature_rejected")
    assert "You rejected signing the upload" in message and "Nothing was sent to the Relay" in message
    assert [r.outcome for r in hydrogen_wallet.calls("eth_sign")] == ["rejected"]
    assert seen == []  # the page never called the Relay


def test_a_revert_shows_its_reason(hydrogen_sandbox, hydrogen_wallet, hydrogen_open_dapp):
    page = hydrogen_open_dapp()
    connect(page, hydrogen_wallet)
    page.click("#create")  # no approval: createTask reverts
    message = wait_done(page)
    shot(page, "revert")
    assert "creating the task failed" in message and "Not enough allowance for task" in message
    (sent,) = hydrogen_wallet.calls("eth_sendTransaction")
    assert sent.outcome == "error" and "Not enough allowance for task" in sent.error["message"]


def test_two_accounts_in_turn_each_create_a_task(hydrogen_sandbox, hydrogen_wallet, hydrogen_open_dapp):
    _, token, task = contracts(hydrogen_sandbox)
    page = hydrogen_open_dapp()
    connect(page, hydrogen_wallet)
    first = hydrogen_wallet.address
    second = hydrogen_wallet.new_account(cnx=50 * CNX)
    approve(page)
    page.click("#create")
    assert "succeeded" in wait_done(page)

    hydrogen_wallet.switch_account(1)  # accountsChanged: the page follows
    page.wait_for_function("a => document.getElementById('account').textContent === a", arg=second.address.lower())
    page.wait_for_function("() => document.getElementById('cnx').dataset.wei === '50000000000000000000'")
    shot(page, "account_switched")
    approve(page)
    page.click("#create")
    assert "succeeded" in wait_done(page)
    creators = [e["args"]["creator"] for e in task.events.TaskCreated().get_logs(from_block=0) if e["args"]["round"] == 0]
    assert creators == [first, second.address]
    assert token.functions.balanceOf(second.address).call() == 20 * CNX
    assert {r.params[0]["from"] for r in hydrogen_wallet.calls("eth_sendTransaction")} == {first.lower(), second.address.lower()}


def test_the_provider_follows_eip_1193_and_6963(hydrogen_sandbox, hydrogen_wallet, hydrogen_open_dapp):
    page = hydrogen_open_dapp()
    page.wait_for_selector("body[data-ready=true]")
    announced = page.evaluate(
        """() => new Promise((resolve) => {
            window.addEventListener('eip6963:announceProvider', (e) => resolve({name: e.detail.info.name, rdns: e.detail.info.rdns, same: e.detail.provider === window.ethereum}));
            window.dispatchEvent(new Event('eip6963:requestProvider'));
        })"""
    )
    assert announced == {"name": "Hydrogen test wallet", "rdns": "network.crynux.hydrogen.testwallet", "same": True}
    address = hydrogen_wallet.address.lower()
    answers = page.evaluate(
        """async (address) => {
            const e = window.ethereum, out = {};
            const attempt = async (f) => { try { return await f(); } catch (err) { return {code: err.code, message: err.message}; } };
            out.chainChanged = [];
            e.on('chainChanged', (id) => out.chainChanged.push(id));
            out.before = await e.request({method: 'eth_accounts'});
            out.unauthorised = await attempt(() => e.request({method: 'personal_sign', params: ['0x68690a', address]}));
            out.accounts = await e.request({method: 'eth_requestAccounts'});
            out.chainId = await e.request({method: 'eth_chainId'});
            out.netVersion = await e.request({method: 'net_version'});
            out.block = await e.request({method: 'eth_blockNumber'});
            out.personal = await e.request({method: 'personal_sign', params: ['0x68690a', address]});
            out.unknownChain = await attempt(() => e.request({method: 'wallet_switchEthereumChain', params: [{chainId: '0x1'}]}));
            await e.request({method: 'wallet_addEthereumChain', params: [{chainId: '0x7a69', chainName: 'other', rpcUrls: ['http://127.0.0.1:1']}]});
            await e.request({method: 'wallet_switchEthereumChain', params: [{chainId: out.chainId}]});
            out.typed = await e.request({method: 'eth_signTypedData_v4', params: [address, JSON.stringify({
                types: {EIP712Domain: [{name: 'name', type: 'string'}, {name: 'chainId', type: 'uint256'}], Mail: [{name: 'contents', type: 'string'}]},
                primaryType: 'Mail', domain: {name: 'Hydrogen', chainId: parseInt(out.chainId, 16)}, message: {contents: 'hello'}})]});
            await new Promise((r) => setTimeout(r, 50));
            return out;
        }""",
        address,
    )
    assert answers["before"] == [] and answers["unauthorised"]["code"] == 4100
    assert answers["accounts"] == [address]
    assert int(answers["chainId"], 16) == hydrogen_sandbox.chain_id == int(answers["netVersion"])
    assert int(answers["block"], 16) >= 1
    assert Account.recover_message(encode_defunct(primitive=b"hi\n"), signature=answers["personal"]) == hydrogen_wallet.address
    assert answers["unknownChain"]["code"] == 4902
    assert answers["chainChanged"] == ["0x7a69", answers["chainId"]]
    typed = encode_typed_data(full_message={
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
                  "Mail": [{"name": "contents", "type": "string"}]},
        "primaryType": "Mail", "domain": {"name": "Hydrogen", "chainId": hydrogen_sandbox.chain_id}, "message": {"contents": "hello"}})  # fmt: skip
    assert Account.recover_message(typed, signature=answers["typed"]) == hydrogen_wallet.address
    assert [r.method for r in hydrogen_wallet.requests if r.outcome != "ok"] == ["personal_sign", "wallet_switchEthereumChain"]


def test_the_readme_example(hydrogen_sandbox, hydrogen_wallet, hydrogen_open_dapp):
    page = hydrogen_open_dapp()  # the README opens the user's URL; here the reference DApp
    page.wait_for_selector("body[data-ready=true]")
    page.click("#connect")
    page.click("#approve")
    page.wait_for_selector("text=Approved")
    hydrogen_wallet.reject("eth_sendTransaction")
    page.click("#create")
    page.wait_for_selector("text=You rejected creating the task")
    assert [r.outcome for r in hydrogen_wallet.calls("eth_sendTransaction")] == ["ok", "rejected"]


def test_the_dapp_is_served_on_the_relay_port(hydrogen_sandbox):
    import httpx

    with httpx.Client(base_url=hydrogen_sandbox.relay_url) as client:
        assert client.get("/dapp").headers["location"] == "/dapp/"
        assert "Hydrogen reference DApp" in client.get("/dapp/").text
        assert client.get("/dapp/config.json").json() == {"chain_id": hydrogen_sandbox.chain_id, "contracts": hydrogen_sandbox.info["contracts"]}
        assert client.get("/dapp/../pyproject.toml").status_code == 404
        assert client.get("/v1/nothing").status_code == 404  # the Relay still answers the rest


def test_the_control_object_rejects_n_requests_and_emits_events(hydrogen_sandbox, hydrogen_wallet, hydrogen_open_dapp):
    page = hydrogen_open_dapp()
    page.wait_for_selector("body[data-ready=true]")
    page.evaluate(
        """() => { window.seen = []; const record = (name) => (payload) => window.seen.push([name, payload]);
                   window.ethereum.on('chainChanged', record('chainChanged'));
                   window.ethereum.on('accountsChanged', record('accountsChanged'));
                   const dropped = record('dropped'); window.ethereum.on('chainChanged', dropped);
                   window.ethereum.removeListener('chainChanged', dropped); }"""
    )
    hydrogen_wallet.reject(count=2)  # the next two requests that need the user
    codes = page.evaluate(
        """async () => { const out = [];
            for (let i = 0; i < 3; i++) { try { await window.ethereum.request({method: 'eth_requestAccounts'}); out.push('ok'); }
                                          catch (e) { out.push(e.code); } }
            out.push(await window.ethereum.request({method: 'eth_blockNumber'}) ? 'read' : 'none');
            return out; }"""
    )
    assert codes == [4001, 4001, "ok", "read"]
    hydrogen_wallet.switch_chain(31337, "http://127.0.0.1:1")
    hydrogen_wallet.switch_chain(hydrogen_sandbox.chain_id)
    hydrogen_wallet.disconnect()
    page.wait_for_function("() => window.seen.length >= 4")
    address = hydrogen_wallet.address.lower()
    assert page.evaluate("() => window.seen") == [
        ["accountsChanged", [address]], ["chainChanged", "0x7a69"], ["chainChanged", hex(hydrogen_sandbox.chain_id)], ["accountsChanged", []],
    ]  # fmt: skip
    assert page.evaluate("() => window.ethereum.request({method: 'eth_accounts'})") == []
    assert page.locator("#account").text_content() == "not connected"  # the DApp followed
