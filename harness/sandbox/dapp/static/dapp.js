// The Hydrogen reference DApp: plain browser JavaScript, no build step, no library.
// The user's wallet (window.ethereum, EIP-1193) signs everything: approve, createTask and
// the Relay's request signatures. Hashing uses the node's web3_sha3 method (no keccak
// here); calls and logs are ABI-encoded and decoded by hand (fixed-size words).
'use strict';

const $ = (id) => document.getElementById(id);
const state = { account: null, config: null, fee: 0n, selectors: {}, lastTask: null };
const POLL_MS = 200;

// ------------------------------------------------------------------ helpers

const wallet = () => {
  if (!window.ethereum) throw new Error('No browser wallet found: install one (window.ethereum).');
  return window.ethereum;
};
const rpc = (method, params = []) => wallet().request({ method, params });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const utf8Hex = (text) => '0x' + [...new TextEncoder().encode(text)].map((b) => b.toString(16).padStart(2, '0')).join('');
const sha3 = (text) => rpc('web3_sha3', [utf8Hex(text)]);
const word = (value) => BigInt(value).toString(16).padStart(64, '0');
const addressWord = (address) => address.toLowerCase().replace(/^0x/, '').padStart(64, '0');
const words = (data) => { const hex = data.replace(/^0x/, ''); const out = []; for (let i = 0; i < hex.length; i += 64) out.push(hex.slice(i, i + 64)); return out; };
const hexBytes = (hex) => { const out = new Uint8Array(hex.length / 2); for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16); return out; };

async function selector(signature) {
  if (!state.selectors[signature]) state.selectors[signature] = (await sha3(signature)).slice(0, 10);
  return state.selectors[signature];
}
const topic = (signature) => sha3(signature);

function units(value, decimals = 18) {
  const whole = value / 10n ** BigInt(decimals);
  const frac = (value % 10n ** BigInt(decimals)).toString().padStart(decimals, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac.slice(0, 6)}` : `${whole}`;
}

// Go's encoding/json, as the Relay serialises its params: keys sorted, compact, HTML-safe.
function goString(text) {
  let out = '"';
  for (const c of text) {
    const code = c.codePointAt(0);
    if (c === '"') out += '\\"';
    else if (c === '\\') out += '\\\\';
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else if (c === '<' || c === '>' || c === '&' || code === 0x2028 || code === 0x2029 || code < 0x20) out += '\\u' + code.toString(16).padStart(4, '0');
    else out += c;
  }
  return out + '"';
}
function goJson(params) {
  return '{' + Object.keys(params).sort().map((key) => {
    const value = params[key];
    return goString(key) + ':' + (typeof value === 'string' ? goString(value) : BigInt(value).toString());
  }).join(',') + '}';
}

// A Relay signature: eth_sign (raw, no prefix) of keccak(goJson(params) + timestamp). The
// wallet answers v = 27/28 as MetaMask does; the Relay wants 0/1.
async function relaySignature(params) {
  const timestamp = Math.floor(Date.now() / 1000);
  const digest = await sha3(goJson(params) + timestamp);
  const signature = await rpc('eth_sign', [state.account, digest]);
  let v = parseInt(signature.slice(130, 132), 16);
  if (v >= 27) v -= 27;
  return { timestamp, signature: signature.slice(0, 130) + v.toString(16).padStart(2, '0') };
}

const relayUrl = (path) => new URL(path, state.config.relay_url || window.location.origin).toString();

async function relayError(response) {
  try {
    const body = await response.json();
    return (body.data && body.data.message) || body.message || `HTTP ${response.status}`;
  } catch (error) { return `HTTP ${response.status}`; }
}

// Retry while the Relay answers one of `retry` (it may lag the chain), up to `seconds`.
async function relayCall(what, send, retry, seconds = 60) {
  const giveUp = Date.now() + seconds * 1000;
  for (;;) {
    const response = await send();
    if (response.ok) return response;
    const message = await relayError(response);
    if (!retry.includes(message) && ![502, 503, 504].includes(response.status)) throw new Error(`The Relay refused ${what}: ${message}`);
    if (Date.now() > giveUp) throw new Error(`${what}: still "${message}" after ${seconds} s`);
    await sleep(POLL_MS);
  }
}

// ------------------------------------------------------------------ the page

function status(text) { $('status').textContent = text; }
function showError(error, what, rejected = 'Nothing was sent.') {
  let text;
  if (error && error.code === 4001) text = `You rejected ${what} in your wallet. ${rejected}`;
  else text = `${what} failed: ${(error && error.message) || error}`;
  $('error').textContent = text;
  $('error').hidden = false;
  status('Stopped.');
}
function clearError() { $('error').hidden = true; $('error').textContent = ''; }

async function refresh() {
  const account = state.account;
  if (!account) return;
  const { token, task } = state.config.contracts;
  const call = async (to, data) => BigInt(await rpc('eth_call', [{ to, data }, 'latest']));
  const [eth, cnx, allowance, fee, chain] = await Promise.all([
    rpc('eth_getBalance', [account, 'latest']).then(BigInt),
    call(token, (await selector('balanceOf(address)')) + addressWord(account)),
    call(token, (await selector('allowance(address,address)')) + addressWord(account) + addressWord(task)),
    call(task, await selector('taskFeePerNode()')),
    rpc('eth_chainId'),
  ]);
  if (state.account !== account) return; // the user switched or left meanwhile: a newer refresh shows theirs
  state.fee = fee;
  const show = (id, value, text) => { $(id).textContent = text; $(id).dataset.wei = value.toString(); };
  $('account').textContent = account;
  $('chain').textContent = String(parseInt(chain, 16));
  show('eth', eth, units(eth));
  show('cnx', cnx, units(cnx));
  show('allowance', allowance, units(allowance));
  show('fee', 3n * fee, units(3n * fee));
}

function setAccount(accounts) {
  state.account = accounts && accounts.length ? accounts[0].toLowerCase() : null;
  $('approve').disabled = $('create').disabled = !state.account;
  if (!state.account) {
    $('account').textContent = 'not connected';
    for (const id of ['cnx', 'eth', 'allowance']) { $(id).textContent = '-'; delete $(id).dataset.wei; }
    return Promise.resolve();
  }
  return refresh();
}

async function connect() {
  clearError();
  try {
    setAccount(await rpc('eth_requestAccounts'));
    status('Connected.');
  } catch (error) { showError(error, 'the connection'); }
}

// Send a transaction through the wallet and wait for its receipt; a revert throws its reason
// (read by replaying the call on the block before, as H-net clients do).
async function transact(to, data, what) {
  status(`${what}: confirm in your wallet…`);
  const tx = { from: state.account, to, data };
  const hash = await rpc('eth_sendTransaction', [tx]);
  status(`${what}: waiting for ${hash}…`);
  let receipt = null;
  while (!(receipt = await rpc('eth_getTransactionReceipt', [hash]))) await sleep(POLL_MS);
  if (receipt.status !== '0x1') {
    let reason = 'reverted';
    try {
      await rpc('eth_call', [tx, '0x' + (BigInt(receipt.blockNumber) - 1n).toString(16)]);
    } catch (error) { reason = error.message; }
    throw new Error(reason);
  }
  return receipt;
}

async function approve() {
  clearError();
  try {
    const amount = 3n * state.fee;
    await transact(state.config.contracts.token,
      (await selector('approve(address,uint256)')) + addressWord(state.config.contracts.task) + word(amount), 'Approve');
    status(`Approved ${units(amount)} CNX to the Task contract.`);
  } catch (error) { showError(error, 'the approval'); }
  await refresh();
}

async function createTask() {
  clearError();
  $('images').replaceChildren();
  let args;
  try { args = JSON.stringify(JSON.parse($('args').value)); } catch (error) { showError(error, 'reading the task arguments'); return; }
  let created;
  try {
    const taskHash = await sha3(args); // keccak of the exact string uploaded later
    const receipt = await transact(state.config.contracts.task,
      (await selector('createTask(bytes32,bytes32)')) + taskHash.slice(2) + word(0), 'Create task');
    const createdTopic = await topic('TaskCreated(uint256,address,address,bytes32,bytes32,uint256)');
    const log = receipt.logs.find((l) => l.address.toLowerCase() === state.config.contracts.task.toLowerCase() && l.topics[0] === createdTopic);
    if (!log) throw new Error('createTask succeeded without a TaskCreated log');
    created = { id: BigInt('0x' + words(log.data)[0]), block: receipt.blockNumber, args };
    state.lastTask = created;
    $('task-id').textContent = `Task ${created.id}`;
    $('task-id').hidden = false;
    $('task-id').dataset.taskId = created.id.toString();
  } catch (error) { showError(error, 'creating the task'); await refresh(); return; }
  await refresh();
  await finish(created);
}

async function finish(created) {
  try {
    await upload(created);
  } catch (error) {
    showError(error, `signing the upload of task ${created.id}'s arguments`,
      `Nothing was sent to the Relay; the task is on chain: no node can run it, cancel it after its deadline for a refund.`);
    return;
  }
  try {
    const outcome = await waitOutcome(created);
    if (outcome.event === 'TaskAborted') throw new Error(`task ${created.id} aborted: ${outcome.reason}`);
    await showImages(created, outcome.result.length / 8);
    status(`Task ${created.id} succeeded: ${outcome.result.length / 8} images.`);
  } catch (error) { showError(error, 'the task'); }
  await refresh();
}

async function upload(created) {
  status(`Task ${created.id}: sign the upload of its arguments in your wallet…`);
  const params = { task_args: created.args, task_id: created.id };
  await relayCall('the args upload', async () => {
    const signed = await relaySignature(params);
    return fetch(relayUrl('/v1/inference_tasks'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task_args: created.args, task_id: Number(created.id), ...signed }),
    });
  }, ['Task not found on the Blockchain']);
}

async function waitOutcome(created) {
  status(`Task ${created.id}: waiting for the nodes…`);
  const success = await topic('TaskSuccess(uint256,bytes,address)');
  const aborted = await topic('TaskAborted(uint256,string)');
  for (;;) {
    const logs = await rpc('eth_getLogs', [{ fromBlock: created.block, toBlock: 'latest', address: state.config.contracts.task, topics: [[success, aborted]] }]);
    for (const log of logs) {
      const w = words(log.data);
      if (BigInt('0x' + w[0]) !== created.id) continue;
      const length = Number(BigInt('0x' + w[2]));
      const bytes = hexBytes(w.slice(3).join('').slice(0, 2 * length));
      if (log.topics[0] === success) return { event: 'TaskSuccess', result: bytes };
      return { event: 'TaskAborted', reason: new TextDecoder().decode(bytes) };
    }
    await sleep(POLL_MS);
  }
}

async function showImages(created, count) {
  for (let i = 0; i < count; i++) {
    status(`Task ${created.id}: downloading image ${i + 1} of ${count}…`);
    const params = { image_num: String(i), task_id: created.id };
    const response = await relayCall(`image ${i}`, async () => {
      const signed = await relaySignature(params);
      const query = new URLSearchParams({ timestamp: String(signed.timestamp), signature: signed.signature });
      return fetch(relayUrl(`/v1/inference_tasks/${created.id}/results/${i}?${query}`));
    }, ['Task results not uploaded']);
    const img = document.createElement('img');
    img.src = URL.createObjectURL(await response.blob());
    img.alt = `image ${i} of task ${created.id}`;
    img.dataset.index = String(i);
    $('images').append(img);
  }
}

async function start() {
  state.config = await (await fetch('config.json')).json();
  $('connect').addEventListener('click', connect);
  $('approve').addEventListener('click', approve);
  $('create').addEventListener('click', createTask);
  if (!window.ethereum) { status('No browser wallet found.'); return; }
  window.ethereum.on('accountsChanged', (accounts) => { clearError(); setAccount(accounts).catch((e) => showError(e, 'reading balances')); });
  window.ethereum.on('chainChanged', () => refresh().catch((e) => showError(e, 'reading balances')));
  // Already connected (the wallet remembers the site)? Then no prompt is needed.
  setAccount(await rpc('eth_accounts')).catch((e) => showError(e, 'reading balances'));
  document.body.dataset.ready = 'true';
}

start().catch((error) => showError(error, 'starting'));
