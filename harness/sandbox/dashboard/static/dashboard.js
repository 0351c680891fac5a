// The sandbox dashboard: renders the snapshots the server streams (GET /api/events) and
// drives its controls (POST /api/...). Same origin only; no third-party code.
"use strict";

const state = { latest: null, openTasks: new Set(), source: null };
const CNX = 10n ** 18n;
const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ formatting

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function cnx(units) {
  // Decimal string of CNX units -> "1,234.5 CNX" (exact: BigInt, at most 4 decimals).
  let value = BigInt(units);
  const sign = value < 0n ? "-" : "";
  if (value < 0n) value = -value;
  const whole = (value / CNX).toLocaleString("en-US");
  let fraction = (value % CNX).toString().padStart(18, "0").slice(0, 4).replace(/0+$/, "");
  if (fraction === "" && value % CNX !== 0n) fraction = "0001";
  return `${sign}${whole}${fraction ? "." + fraction : ""} CNX`;
}

function clock(seconds) {
  if (!seconds) return "–";
  const d = new Date(seconds * 1000);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

function span(seconds) {
  const s = Math.abs(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function who(name, address) {
  return el("span", { class: name && name.startsWith("0x") ? "addr" : "", title: address || "" }, name || "–");
}

function short(address) {
  return address ? `${address.slice(0, 6)}…${address.slice(-4)}` : "";
}

function badge(text, kind) {
  return el("span", { class: `badge ${kind || text.replace(/ /g, "-")}` }, text);
}

function cell(content, cls) {
  return el("td", { class: cls || null }, content);
}

const built = new WeakMap(); // element -> the JSON of the item it was built from

function keyed(container, items, build, empty) {
  // Reuse each element whose item is unchanged: a block re-renders only what moved, so
  // images are not fetched again, open timelines stay open and a button under the
  // pointer stays the same button.
  const old = new Map();
  for (const child of container.children) if (child.dataset.key !== undefined) old.set(child.dataset.key, child);
  const children = items.map(([key, item]) => {
    const json = JSON.stringify(item);
    const previous = old.get(String(key));
    if (previous && built.get(previous) === json) return previous;
    const made = build(item);
    made.dataset.key = String(key);
    built.set(made, json);
    return made;
  });
  if (!children.length) children.push(empty());
  const current = [...container.children];
  if (children.length !== current.length || children.some((child, i) => child !== current[i])) {
    container.replaceChildren(...children);
  }
}

function fill(tbody, items, build, empty, columns) {
  keyed(tbody, items, build, () => el("tr", {}, el("td", { class: "muted", colSpan: columns }, empty)));
}

// ------------------------------------------------------------------ rendering

function render(snapshot) {
  state.latest = snapshot;
  if (snapshot.error) {
    say(`The dashboard could not read the chain: ${snapshot.error}`, true);
    return;
  }
  const net = snapshot.network;
  $("chain").textContent = `${net.chain} chain · id ${net.chain_id}`;
  $("block").textContent = net.block;
  $("time").textContent = clock(net.time);
  $("params").textContent = `fee ${cnx(net.task_fee)} per node · timeout ${span(net.timeout)} · distance < ${net.distance_threshold}`;
  document.body.dataset.block = net.block;
  renderTasks(snapshot.tasks, snapshot.counts, net.time);
  renderNodes(snapshot.nodes);
  renderLedger(snapshot.ledger);
  renderFaults(snapshot.faults);
  renderActivity(snapshot.activity);
}

function renderTasks(tasks, counts, now) {
  const parts = Object.entries(counts).filter(([key, n]) => key !== "tasks" && n > 0).map(([key, n]) => `${n} ${key}`);
  $("task-counts").textContent = counts.tasks ? `${counts.tasks} in all: ${parts.join(", ")}` + (tasks.length < counts.tasks ? ` (newest ${tasks.length} shown)` : "") : "";
  keyed($("tasks"), tasks.map((task) => [task.id, task]), renderTask,
    () => el("p", { class: "muted" }, "No task yet: create one with the application wallet."));
  for (const until of $("tasks").querySelectorAll(".until")) {  // the only part that moves with time
    const deadline = Number(until.dataset.deadline);
    until.textContent = now > deadline ? `${span(now - deadline)} ago` : `in ${span(deadline - now)}`;
  }
}

function renderTask(task) {
  const head = el("header", {},
    el("strong", {}, `Task ${task.id}`),
    badge(task.status, task.status.replace(/ /g, "-")),
    task.succeeded && task.status === "cancelled" ? badge("after success", "success") : null,
    task.cancellable ? badge("past deadline: cancellable", "cancellable") : null,
    task.on_chain ? null : el("span", { class: "muted" }, "settled (deleted on chain)"),
  );
  const rounds = el("span", { class: "rounds" }, task.nodes.map((n) =>
    el("span", { "data-round": n.round }, `${n.round}: `, who(n.name, n.address), n.outcome ? [" ", badge(n.outcome)] : null)));
  const facts = el("dl", { class: "facts" },
    el("dt", {}, "creator"), el("dd", {}, who(task.creator_name, task.creator)),
    el("dt", {}, "created"), el("dd", {}, `block ${task.created_block} at ${clock(task.created_time)}`),
    el("dt", {}, "nodes"), el("dd", {}, rounds),
    task.deadline && task.on_chain ? [el("dt", {}, "deadline"), el("dd", {}, `${clock(task.deadline)} (`, el("span", { class: "until", "data-deadline": task.deadline }), ")")] : null,
    task.result_node ? [el("dt", {}, "result node"), el("dd", {}, who(task.result_node_name, task.result_node))] : null,
    task.result ? [el("dt", {}, "result"), el("dd", { class: "mono", title: task.result }, task.result.length > 52 ? task.result.slice(0, 50) + "…" : task.result)] : null,
    task.abort_reason ? [el("dt", {}, "abort reason"), el("dd", { class: "abort-reason" }, task.abort_reason)] : null,
    task.on_chain ? [el("dt", {}, "escrow now"), el("dd", {}, cnx(task.escrow_now))] : null,
  );
  const images = el("div", { class: "images" });
  for (let i = 0; i < task.images; i++) {
    const full = `/api/tasks/${task.id}/images/${i}`;
    images.append(el("a", { href: full, target: "_blank", rel: "noopener", title: `image ${i} (full PNG)` },
      el("img", { src: `/api/tasks/${task.id}/thumbs/${i}`, alt: `task ${task.id} image ${i}`, loading: "lazy", width: 96, height: 96 })));
  }
  const rows = task.events.map((e) => el("tr", {}, cell(e.block, "num"), cell(clock(e.time)), cell(e.actor), cell(e.what)));
  const timeline = el("details", { open: state.openTasks.has(task.id) },
    el("summary", {}, `timeline (${task.events.length})`),
    el("table", { class: "grid events" },
      el("thead", {}, el("tr", {}, el("th", { class: "num" }, "block"), el("th", {}, "time"), el("th", {}, "who"), el("th", {}, "what"))),
      el("tbody", {}, rows)));
  timeline.addEventListener("toggle", () => {
    if (timeline.open) state.openTasks.add(task.id); else state.openTasks.delete(task.id);
  });
  return el("article", { class: "task", "data-task": task.id, "data-status": task.status }, head, facts,
    task.images ? images : null, timeline);
}

function renderNodes(nodes) {
  fill($("nodes").tBodies[0], nodes.map((n) => [n.address, n]), (n) => {
    const status = n.crashed ? "crashed" : n.status;
    const actions = el("td", { class: "actions" });
    if (n.simulated && !n.crashed) {
      if (n.status === "available" || n.status === "busy") actions.append(button("pause", n));
      if (n.status === "paused") actions.append(button("resume", n));
      actions.append(" ", button("crash", n, "danger"));
    }
    return el("tr", { "data-node": n.name, class: BigInt(n.slashed) > 0n ? "slashed" : null },
      cell([who(n.name, n.address), el("div", { class: "sub addr", title: n.address }, short(n.address))]), cell(n.behaviour, "mono"),
      cell(badge(status)),
      cell(cnx(n.stake), "num stake"), cell(cnx(n.earned), "num earned"),
      cell(BigInt(n.slashed) > 0n ? [cnx(n.slashed), n.slashed_in.length ? el("div", { class: "sub" }, `in task ${n.slashed_in.join(", ")}`) : null] : "–", "num slashed"),
      cell(cnx(n.balance), "num balance"), cell(n.task ? String(n.task) : "–"), actions);
  }, "No node has joined.", 9);
}

function button(action, node, kind) {
  const b = el("button", { type: "button", class: `small ${kind || ""}`, "data-action": action }, action);
  b.addEventListener("click", () => {
    if (action === "crash" && !confirm(`Crash ${node.name}? It will never act again in this run.`)) return;
    post(`/api/nodes/${encodeURIComponent(node.name)}/${action}`, {}, `${node.name}: ${action}`);
  });
  return b;
}

function renderLedger(ledger) {
  $("escrow-now").textContent = cnx(ledger.escrow_now);
  const net = (party, kind) => party.net[kind] ? cnx(party.net[kind]) : "–";
  fill($("parties").tBodies[0], ledger.parties.map((p) => [p.address, p]), (p) => el("tr", { "data-party": p.name },
    cell(who(p.name, p.address)), cell(cnx(p.balance), "num balance"), cell(net(p, "escrow"), "num"), cell(net(p, "fee"), "num"),
    cell(net(p, "refund"), "num"), cell(sumOf(p, ["stake", "stake returned"]), "num"), cell(net(p, "stake slashed"), "num"),
    cell(net(p, "transfer"), "num")), "No CNX has moved yet.", 8);
  fill($("task-money").tBodies[0], ledger.tasks.map((t) => [t.task_id, t]), (t) => el("tr", { "data-task": t.task_id },
    cell(String(t.task_id)), cell(cnx(t.escrowed), "num"),
    cell([cnx(t.paid), t.paid_to.length ? el("div", { class: "sub" }, t.paid_to.map((p) => `${p.name} ${cnx(p.amount)}`).join(", ")) : null], "num"),
    cell(cnx(t.refunded), "num"), cell(BigInt(t.stakes_slashed) > 0n ? cnx(t.stakes_slashed) : "–", "num"),
    cell(cnx(t.escrow_now), "num escrow")), "No task yet.", 6);
  $("movement-count").textContent = `(${ledger.movement_count}${ledger.movement_count > ledger.movements.length ? `, newest ${ledger.movements.length} shown` : ""})`;
  fill($("movements").tBodies[0], ledger.movements.map((m, i) => [`${m.tx}:${ledger.movement_count - i}`, m]), (m) => el("tr", { class: m.kind === "stake slashed" ? "slashed" : null },
    cell(String(m.block), "num"), cell(m.kind), cell(who(m.from_name, m.from)), cell(who(m.to_name, m.to)),
    cell(cnx(m.amount), "num"), cell(m.task_id === null ? "–" : String(m.task_id))), "none", 6);
}

function sumOf(party, kinds) {
  let total = 0n;
  let any = false;
  for (const kind of kinds) if (party.net[kind]) { total += BigInt(party.net[kind]); any = true; }
  return any ? cnx(total.toString()) : "–";
}

function renderFaults(faults) {
  const items = faults.map((f) => el("li", {}, `${f.server}: next ${f.remaining} ${f.method || "any"} requests`,
    f.path ? ` matching ${f.path}` : "", ` → ${f.effect}`));
  $("faults").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "none")]));
}

function renderActivity(activity) {
  $("activity").replaceChildren(...activity.map((e) => el("li", {},
    el("span", { class: "when" }, `#${e.block} ${clock(e.time)}`), el("span", { class: "who" }, e.actor),
    e.task_id ? `task ${e.task_id}: ` : "", e.what)));
}

// ------------------------------------------------------------------ controls

function say(text, error) {
  const box = $("message");
  box.textContent = text;
  box.className = `message ${error ? "error" : "ok"}`;
}

async function post(path, body, what) {
  try {
    const answer = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      const detail = data.data ? `${data.data.field_name}: ${data.data.message}` : data.message || `HTTP ${answer.status}`;
      say(`${what} refused: ${detail}`, true);
      return null;
    }
    say(`${what}: done`, false);
    return data;
  } catch (error) {
    say(`${what} failed: ${error}`, true);
    return null;
  }
}

function wholeNumber(input) {
  // Send what was typed: a number when it is one, else the text, for the server to refuse.
  const text = input.value.trim();
  return /^-?\d+$/.test(text) ? Number(text) : text;
}

function setUpControls() {
  $("advance-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const seconds = wholeNumber($("advance-seconds"));
    const done = await post("/api/time/advance", { seconds }, `advance ${seconds} s`);
    if (done) say(`chain time is now ${clock(done.time)} (block ${done.block})`, false);
  });
  $("advance-timeout").addEventListener("click", async () => {
    const timeout = state.latest && state.latest.network ? state.latest.network.timeout : 900;
    const done = await post("/api/time/advance", { seconds: timeout + 1 }, `advance ${timeout + 1} s`);
    if (done) say(`chain time is now ${clock(done.time)} (block ${done.block}): tasks created before are past their deadline`, false);
  });
  $("fault-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const [kind, value] = $("fault-effect").value.split(":");
    const body = { count: wholeNumber($("fault-count")) };
    if (kind === "status") body.status = Number(value);
    else if (kind === "delay") body.delay = Number(value);
    else body.drop = true;
    if ($("fault-method").value) body.method = $("fault-method").value;
    if ($("fault-path").value) body.path = $("fault-path").value;
    const done = await post("/api/relay/faults", body, "Relay fault");
    if (done) say(`Relay fault armed: next ${done.armed.count} ${done.armed.method || "any"} requests → ${done.armed.effect}`, false);
  });
  $("faults-clear").addEventListener("click", () => post("/api/faults/clear", {}, "clear faults"));
}

// ------------------------------------------------------------------ the live stream

function connect() {
  const source = new EventSource("/api/events");
  state.source = source;
  source.addEventListener("state", (event) => {
    $("live").textContent = "live";
    $("live").className = "live on";
    render(JSON.parse(event.data));
  });
  source.addEventListener("error", () => {
    $("live").textContent = "reconnecting…";
    $("live").className = "live off";
  });
}

setUpControls();
connect();
