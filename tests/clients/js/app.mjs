// A Hydrogen Network application written with ethers v6 and its defaults, as a user
// would write it from PROTOCOL.md: approve, createTask (gas estimated by ethers),
// upload the task args to the Relay signed (PROTOCOL.md 4), wait for TaskSuccess
// with contract.on(...), download the images. Driven by tests/clients/test_ethers_app.py.
//
//   node app.mjs < config.json > result.json
//
// config: {rpc_url, ws_url, relay_url, contracts: {token, node, task}, abi: {token, node, task},
//          app_key, tasks, in_flight, transport: "http" | "ws", batching: bool,
//          polling_ms, timeout_s, first_seed}
// result: {tasks_created, succeeded, out_of_gas, reverted, refused_nonces, lost_events,
//          repeated_events, aborted, images, errors, seconds, transport, batching}
//
// Transactions go through a NonceManager; each wave sends one approve and then
// `in_flight` createTask calls at once, without waiting in between, so several
// transactions are in flight and may reach the node out of nonce order.

import { ethers } from "ethers";

const ZERO_HASH = "0x" + "00".repeat(32);
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

// ---------------------------------------------------------------- Relay signatures (PROTOCOL.md 4)

// Go's encoding/json escapes these; every other control character becomes \u00XX.
const GO_ESCAPES = {
  '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
  "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029",
};

function goString(text) {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0);
    out += GO_ESCAPES[ch] ?? (code < 0x20 ? "\\u" + code.toString(16).padStart(4, "0") : ch);
  }
  return out + '"';
}

// The params as Go's json.Marshal writes them: keys sorted, compact, HTML-safe escapes.
export function goJson(params) {
  const keys = Object.keys(params).sort();
  return "{" + keys.map((k) => {
    const v = params[k];
    return goString(k) + ":" + (typeof v === "string" ? goString(v) : BigInt(v).toString());
  }).join(",") + "}";
}

// timestamp and signature: raw secp256k1 over keccak(JSON + timestamp), v in {0, 1}, low s.
export function signRequest(params, signingKey, now = Math.floor(Date.now() / 1000)) {
  const digest = ethers.keccak256(ethers.toUtf8Bytes(goJson(params) + String(now)));
  const sig = signingKey.sign(digest);
  let s = BigInt(sig.s);
  let v = sig.yParity;
  if (s > SECP256K1_N / 2n) { // the Relay refuses high s; ethers already signs low s
    s = SECP256K1_N - s;
    v ^= 1;
  }
  const signature = ethers.concat([sig.r, ethers.toBeHex(s, 32), v ? "0x01" : "0x00"]);
  return { timestamp: now, signature };
}

function relayMessage(status, body) {
  if (body && typeof body === "object") {
    if (body.data && typeof body.data === "object" && body.data.message) return String(body.data.message);
    if (body.message) return String(body.message);
  }
  return `HTTP ${status}`;
}

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line) => process.stderr.write(`[ethers-app] ${line}\n`);

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function withTimeout(promise, ms, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function isNonceRefusal(error) {
  const text = `${error?.code ?? ""} ${error?.shortMessage ?? ""} ${error?.message ?? ""} ${error?.info?.error?.message ?? ""}`;
  return error?.code === "NONCE_EXPIRED" || error?.code === "REPLACEMENT_UNDERPRICED" || /nonce/i.test(text);
}

// ---------------------------------------------------------------- the application

class App {
  constructor(cfg, provider) {
    this.cfg = cfg;
    this.provider = provider;
    this.wallet = new ethers.Wallet(cfg.app_key, provider);
    this.signer = new ethers.NonceManager(this.wallet);
    this.token = new ethers.Contract(cfg.contracts.token, cfg.abi.token, this.signer);
    this.task = new ethers.Contract(cfg.contracts.task, cfg.abi.task, this.signer);
    this.nodes = new ethers.Contract(cfg.contracts.node, cfg.abi.node, provider);
    this.deadline = Date.now() + cfg.timeout_s * 1000;
    this.result = {
      transport: cfg.transport, batching: cfg.batching, tasks_created: 0, succeeded: 0,
      out_of_gas: 0, reverted: 0, refused_nonces: 0, lost_events: 0, repeated_events: 0,
      aborted: 0, images: 0, errors: [], seconds: 0,
    };
    this.created = new Set(); // ids of the tasks this run created
    this.successes = new Map(); // taskId -> {result, resultNode, count}
    this.waiters = new Map(); // taskId -> resolve
  }

  remaining() {
    return Math.max(this.deadline - Date.now(), 1);
  }

  async listen() {
    // ethers' contract.on: eth_newFilter + eth_getFilterChanges over HTTP, eth_subscribe over WebSocket.
    await this.task.on("TaskSuccess", (taskId, result, resultNode) => {
      const id = taskId.toString(); // any task's: one created by an earlier run may end now
      const seen = this.successes.get(id);
      if (seen) {
        seen.count += 1;
        this.result.repeated_events += 1;
        return;
      }
      this.successes.set(id, { result, resultNode, count: 1 });
      this.waiters.get(id)?.();
    });
    await this.task.on("TaskAborted", (taskId, reason) => {
      this.result.aborted += 1;
      this.result.errors.push(`task ${taskId}: aborted: ${reason}`);
    });
  }

  waitSuccess(id) {
    if (this.successes.has(id)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.set(id, resolve));
  }

  // A sent transaction's receipt; out of gas (status 0 with every unit of gas used) counted apart.
  async mined(label, sending) {
    let tx;
    try {
      tx = await sending;
    } catch (error) {
      if (isNonceRefusal(error)) this.result.refused_nonces += 1;
      const request = JSON.stringify(error.info ?? error.error ?? null)?.slice(0, 300); // the failing request, for the report
      this.result.errors.push(`${label}: send failed: ${error.shortMessage ?? error.message} (${request})`);
      return null;
    }
    try {
      return await withTimeout(tx.wait(), this.remaining(), `${label} receipt`);
    } catch (error) {
      const receipt = error.receipt;
      if (receipt && receipt.gasUsed === tx.gasLimit) {
        this.result.out_of_gas += 1;
        this.result.errors.push(`${label}: out of gas (${receipt.gasUsed} of ${tx.gasLimit})`);
      } else if (receipt) {
        this.result.reverted += 1;
        this.result.errors.push(`${label}: reverted: ${error.reason ?? error.shortMessage}`);
      } else {
        // Never mined: say where it stands, for the report.
        const pool = await this.provider.send("txpool_status", []).catch((e) => e.message);
        const mined = await this.provider.getTransactionCount(this.wallet.address, "latest").catch(() => "?");
        this.result.errors.push(
          `${label} (nonce ${tx.nonce}, account nonce ${mined}, pool ${JSON.stringify(pool)}): ${error.shortMessage ?? error.message}`,
        );
      }
      return null;
    }
  }

  async enoughNodes(count) {
    // A wave needs 3 free nodes per task; nodes of the last wave may still be finishing.
    while ((await this.nodes.availableNodes()) < BigInt(count)) {
      if (Date.now() > this.deadline) throw new Error(`fewer than ${count} nodes available`);
      await sleep(100);
    }
  }

  async uploadArgs(taskId, argsJson) {
    const params = { task_args: argsJson, task_id: Number(taskId) };
    for (;;) {
      const body = { ...params, ...signRequest(params, this.wallet.signingKey) };
      const response = await fetch(`${this.cfg.relay_url}/v1/inference_tasks`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => null);
      const message = response.ok ? "" : relayMessage(response.status, answer);
      if (response.ok || message === "Task already uploaded") return;
      if (message !== "Task not found on the Blockchain" || Date.now() > this.deadline) {
        throw new Error(`task ${taskId}: the Relay refused the args: ${message}`);
      }
      await sleep(200); // the Relay has not seen the task on chain yet
    }
  }

  async download(taskId, index) {
    const params = { image_num: String(index), task_id: Number(taskId) };
    for (;;) {
      const { timestamp, signature } = signRequest(params, this.wallet.signingKey);
      const url = `${this.cfg.relay_url}/v1/inference_tasks/${taskId}/results/${index}?timestamp=${timestamp}&signature=${signature}`;
      const response = await fetch(url);
      if (response.ok) return new Uint8Array(await response.arrayBuffer());
      const message = relayMessage(response.status, await response.json().catch(() => null));
      if (message !== "Task results not uploaded" || Date.now() > this.deadline) {
        throw new Error(`task ${taskId}: image ${index}: ${message}`);
      }
      await sleep(200); // the result node is still uploading
    }
  }

  taskArgs(seed) {
    // The exact string hashed on chain and uploaded.
    return JSON.stringify({
      base_model: "runwayml/stable-diffusion-v1-5",
      prompt: `an ethers app's task ${seed}`,
      negative_prompt: "",
      task_config: { image_width: 64, image_height: 64, num_images: 1, seed, steps: 1, cfg: 5, safety_checker: false },
    });
  }

  async runTask(argsJson, receipt) {
    const created = receipt.logs.map((l) => this.task.interface.parseLog(l)).find((e) => e?.name === "TaskCreated");
    if (!created) throw new Error("createTask succeeded without a TaskCreated log");
    const id = created.args.taskId.toString();
    this.created.add(id);
    this.result.tasks_created += 1;
    await this.uploadArgs(id, argsJson);
    await withTimeout(this.waitSuccess(id), this.remaining(), `TaskSuccess of task ${id}`);
    const result = ethers.getBytes(this.successes.get(id).result);
    for (let index = 0; index < result.length / 8; index++) {
      const png = await this.download(id, index);
      if (png[0] !== 0x89 || png[1] !== 0x50) throw new Error(`task ${id}: image ${index} is not a PNG`);
      this.result.images += 1;
    }
    this.result.succeeded += 1;
  }

  async wave(seeds) {
    const fee = await this.task.taskFeePerNode();
    await this.enoughNodes(3 * seeds.length);
    const args = seeds.map((seed) => this.taskArgs(seed));
    // One approve for the wave, sent (not yet mined: createTask's estimate runs against the
    // pending state), then every createTask at once: the NonceManager hands out consecutive
    // nonces, and the sends race each other after their estimates.
    const approving = this.token.approve(this.cfg.contracts.task, fee * 3n * BigInt(seeds.length));
    await approving.catch(() => null);
    const creating = args.map((argsJson, i) => this.mined(
      `createTask ${seeds[i]}`, this.task.createTask(ethers.keccak256(ethers.toUtf8Bytes(argsJson)), ZERO_HASH),
    ));
    const receipts = await Promise.all([this.mined("approve", approving), ...creating]);
    receipts.shift();
    await Promise.all(receipts.map((receipt, i) => (
      receipt ? this.runTask(args[i], receipt).catch((error) => this.result.errors.push(error.message)) : null
    )));
  }

  async run() {
    const started = Date.now();
    await this.listen();
    const fromBlock = await this.provider.getBlockNumber();
    let seed = this.cfg.first_seed;
    for (let done = 0; done < this.cfg.tasks && Date.now() < this.deadline; ) {
      const size = Math.min(this.cfg.in_flight, this.cfg.tasks - done);
      const seeds = Array.from({ length: size }, () => seed++);
      await this.wave(seeds);
      done += size;
      log(`${done}/${this.cfg.tasks} tasks: ${this.result.succeeded} succeeded, ${this.result.errors.length} errors`);
    }
    // A task of this run whose TaskSuccess is on chain but never reached contract.on was lost.
    const onChain = await this.task.queryFilter(this.task.filters.TaskSuccess(), fromBlock);
    for (const event of onChain) {
      const id = event.args.taskId.toString();
      if (this.created.has(id) && !this.successes.has(id)) {
        this.result.lost_events += 1;
        this.result.errors.push(`task ${id}: TaskSuccess in block ${event.blockNumber} never reached contract.on`);
      }
    }
    this.result.seconds = (Date.now() - started) / 1000;
    return this.result;
  }
}

function makeProvider(cfg) {
  if (cfg.transport === "ws") return new ethers.WebSocketProvider(cfg.ws_url);
  // Defaults but two: the polling interval (4 s by default, which only slows a test
  // down: the same calls come, more often) and, for the "no batching" run, one request
  // per HTTP call instead of ethers' JSON-RPC batches.
  const options = { pollingInterval: cfg.polling_ms };
  if (!cfg.batching) options.batchMaxCount = 1;
  return new ethers.JsonRpcProvider(cfg.rpc_url, undefined, options);
}

async function main() {
  const cfg = JSON.parse(await readStdin());
  const provider = makeProvider(cfg);
  let result;
  try {
    result = await new App(cfg, provider).run();
  } catch (error) {
    result = { fatal: String(error?.stack ?? error) };
  } finally {
    provider.destroy();
  }
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(result.fatal ? 1 : 0);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
