// dsrlab ui: draws the lab's scene and keeps it live from the server's
// event stream. Plain DOM and SVG; every text from the server goes in
// through textContent, never as markup.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
// The token stays in this page (for actions) and in a cookie the server
// set; the address bar, and screenshots of it, lose it.
if (token) history.replaceState(null, "", location.pathname);

const ROW = 260, TOP = 60, NODE_W = 210, NODE_H = 78, GAP = 36;
let W = 760;
let scene = null;
let styles = {};
const ends = {};   // "node:iface" -> {x, y} of the node box it belongs to
const dirs = {};   // "A>B" -> {line, label, roles}

function el(tag, attrs, parent, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function h(tag, parent, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  if (parent) parent.appendChild(e);
  return e;
}

function nodeOf(end) { return end.split(":")[0]; }

// colourOf picks what a direction is drawn as: the reply first, so the
// direct return stands out wherever it goes.
function roleOf(roles) {
  for (const r of ["reply", "tunnel", "request"]) if (roles.includes(r)) return r;
  return "link";
}

function drawScene(sc) {
  scene = sc;
  styles = Object.fromEntries(sc.styles.map(s => [s.name, s]));
  document.getElementById("lab").textContent = sc.lab;
  document.title = "dsrlab ui: " + sc.lab;
  const svg = document.getElementById("graph");
  svg.replaceChildren();
  const rows = Math.max(...sc.nodes.map(n => n.row)) + 1;
  W = Math.max(760, Math.max(...sc.nodes.map(n => n.cols)) * (NODE_W + GAP));
  const height = TOP + (rows - 1) * ROW + NODE_H + 40;
  svg.setAttribute("viewBox", `0 0 ${W} ${height}`);
  const defs = el("defs", {}, svg);
  for (const s of sc.styles) {
    const m = el("marker", {id: "arrow-" + s.name, viewBox: "0 0 10 10", refX: 9, refY: 5, markerUnits: "userSpaceOnUse", markerWidth: 11, markerHeight: 11, orient: "auto-start-reverse"}, defs);
    el("path", {d: "M0,0 L10,5 L0,10 z", fill: s.color}, m);
  }
  const pos = {};
  for (const n of sc.nodes) pos[n.name] = {x: (n.col + 0.5) * W / n.cols, y: TOP + n.row * ROW};
  const linkLayer = el("g", {id: "links"}, svg);
  el("g", {id: "hops"}, svg);
  const nodeLayer = el("g", {id: "nodes-layer"}, svg);
  for (const k of Object.keys(dirs)) delete dirs[k];
  for (const l of sc.links) {
    const a = pos[nodeOf(l.a)], b = pos[nodeOf(l.b)];
    ends[l.a] = a; ends[l.b] = b;
    const g = el("g", {class: "link", "data-link": l.a + "—" + l.b}, linkLayer);
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
    const nx = -dy / len * 9, ny = dx / len * 9;   // the two directions side by side
    const ux = dx / len, uy = dy / len;
    const trim = (NODE_H / 2 + 6) / Math.max(Math.abs(uy), 0.35);
    for (const [from, to, roles, sign, key] of [[l.a, l.b, l.a_to_b, 1, "a_to_b"], [l.b, l.a, l.b_to_a, -1, "b_to_a"]]) {
      const role = roleOf(roles), st = styles[role];
      const s = sign > 0 ? a : b, e = sign > 0 ? b : a;
      const x1 = s.x + sign * ux * trim + nx * sign, y1 = s.y + sign * uy * trim + ny * sign;
      const x2 = e.x - sign * ux * trim + nx * sign, y2 = e.y - sign * uy * trim + ny * sign;
      const line = el("line", {class: "dir idle", x1, y1, x2, y2, stroke: st.color, "stroke-width": st.width,
        "marker-end": `url(#arrow-${role})`, "data-dir": from + ">" + to, "data-role": role}, g);
      if (st.dashed) line.setAttribute("stroke-dasharray", "7 5");
      // The label runs along its direction, on its side of the link,
      // and is never upside down.
      const mx = (x1 + x2) / 2 + nx * sign * 2.6, my = (y1 + y2) / 2 + ny * sign * 2.6;
      let angle = Math.atan2(y2 - y1, x2 - x1) * 180 / Math.PI;
      if (angle > 90) angle -= 180;
      if (angle < -90) angle += 180;
      const label = el("text", {class: "rate", x: mx, y: my, fill: st.color, "text-anchor": "middle", "dominant-baseline": "middle",
        transform: `rotate(${angle} ${mx} ${my})`, "data-dir": from + ">" + to, "data-pps": 0, "data-bps": 0}, g, "–");
      dirs[from + ">" + to] = {line, label, role, key, link: g};
      el("title", {}, line, `${from} → ${to}: ${roles.join(", ") || "no flow of a VIP"}`);
    }
    el("text", {class: "link-state", x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 12, "text-anchor": "middle"}, g, "");
  }
  for (const n of sc.nodes) {
    const p = pos[n.name];
    const g = el("g", {class: "node-box", "data-node": n.name, transform: `translate(${p.x - NODE_W / 2},${p.y - NODE_H / 2})`}, nodeLayer);
    el("rect", {width: NODE_W, height: NODE_H, rx: 10, fill: n.fill, stroke: n.stroke, "stroke-width": 2}, g);
    el("text", {class: "name", x: 10, y: 18}, g, n.name);
    el("text", {x: 10, y: 32, fill: "#555", class: "kind"}, g, clip(n.lines[0]));
    n.lines.slice(1, 4).forEach((line, i) => el("text", {x: 10, y: 46 + i * 12, fill: "#333"}, g, clip(line)));
    el("title", {}, g, n.lines.join("\n"));
  }
  fillSelectors(sc);
}

// clip keeps a line inside its node's box; the box's title has it whole.
function clip(line) {
  return line.length > 34 ? line.slice(0, 33) + "…" : line;
}

function fillSelectors(sc) {
  const from = document.getElementById("trace-from");
  const keep = from.value;
  from.replaceChildren();
  for (const n of sc.nodes) {
    const o = h("option", from, n.name);
    if (n.kind !== "client") o.textContent += " (" + n.kind + ")";
    o.value = n.name;
  }
  const first = sc.nodes.find(n => n.kind === "client");
  from.value = keep && sc.nodes.some(n => n.name === keep) ? keep : (first ? first.name : "");
  const cap = document.getElementById("capture-iface");
  const keepCap = cap.value;
  cap.replaceChildren();
  for (const l of sc.links) for (const e of [l.a, l.b]) h("option", cap, e).value = e;
  if (keepCap) cap.value = keepCap;
}

function fmtBits(bps) {
  const u = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"];
  let i = 0;
  while (bps >= 1000 && i < u.length - 1) { bps /= 1000; i++; }
  return (i ? bps.toFixed(1) : Math.round(bps)) + " " + u[i];
}

function fmtPkts(pps) {
  return pps >= 1000 ? (pps / 1000).toFixed(1) + " kpps" : Math.round(pps) + " pps";
}

function applyState(st) {
  document.getElementById("lab").textContent = st.lab;
  document.body.dataset.up = String(st.up);
  document.body.classList.toggle("degraded", st.status.startsWith("degraded"));
  document.getElementById("status").textContent = st.status;
  document.getElementById("down-banner").hidden = st.up;
  if (!st.up) document.getElementById("down-banner").textContent = "lab " + st.lab + " is down";
  // A lab that is down shows no traffic and no link states: nothing of
  // the last picture stays.
  for (const d of Object.values(dirs)) {
    d.label.textContent = "–";
    d.label.dataset.pps = d.label.dataset.bps = 0;
    d.line.setAttribute("stroke-width", styles[d.role].width);
    d.line.classList.add("idle");
    d.link.classList.remove("down");
    d.link.querySelector(".link-state").textContent = "";
  }
  for (const l of st.up ? st.links : []) {
    for (const [from, to, r] of [[l.a, l.b, l.a_to_b], [l.b, l.a, l.b_to_a]]) {
      const d = dirs[from + ">" + to];
      if (!d) continue;
      d.label.textContent = fmtBits(r.bps) + " · " + fmtPkts(r.pps);
      d.label.dataset.pps = r.pps;
      d.label.dataset.bps = r.bps;
      d.label.dataset.bytes = r.bytes;
      const base = styles[d.role].width;
      // Width grows with the rate's order of magnitude: 1 kbit/s to
      // 10 Gbit/s spans a few pixels, and an idle direction fades.
      const extra = r.bps > 0 ? Math.min(6, Math.max(0, Math.log10(r.bps) - 4)) : 0;
      d.line.setAttribute("stroke-width", base + extra);
      d.line.classList.toggle("idle", r.pps < 1);
      d.link.classList.toggle("down", !!l.state);
      d.link.querySelector(".link-state").textContent = l.state || "";
    }
  }
  for (const n of st.nodes) {
    const g = document.querySelector(`.node-box[data-node="${CSS.escape(n.name)}"]`);
    if (g) g.classList.toggle("not-running", n.state !== "running");
  }
  drawNodes(st.nodes);
  drawBalancers(st.balancers);
}

function table(parent, columns, rows) {
  const t = h("table", parent, undefined, "grid");
  const hr = h("tr", t);
  for (const c of columns) h("th", hr, c);
  for (const r of rows) {
    const tr = h("tr", t);
    for (const c of r) h("td", tr, c);
  }
  return t;
}

function drawNodes(nodes) {
  const t = document.getElementById("nodes");
  t.replaceChildren();
  const hr = h("tr", t);
  for (const c of ["node", "state", "XDP programs"]) h("th", hr, c);
  for (const n of nodes) {
    const tr = h("tr", t);
    tr.dataset.node = n.name;
    h("td", tr, n.name);
    h("td", tr, n.state + (n.error ? " (" + n.error + ")" : ""));
    h("td", tr, n.programs.map(p => `${p.name} (${p.mode}) on ${p.interface}`).join(", ") || "–");
  }
}

function drawBalancers(bals) {
  const box = document.getElementById("balancers");
  box.replaceChildren();
  for (const b of bals) {
    const d = h("details", box);
    d.open = true;
    d.dataset.balancer = b.node;
    h("summary", d, "balancer " + b.node);
    if (!b.sections.length) h("div", d, "nothing read yet");
    for (const s of b.sections) {
      h("h3", d, s.title);
      table(d, s.columns, s.rows || []);
    }
  }
}

function addLog(e) {
  const li = document.createElement("li");
  li.textContent = new Date(e.time).toLocaleTimeString() + "  " + e.text;
  const log = document.getElementById("log");
  log.insertBefore(li, log.firstChild);
  while (log.children.length > 200) log.removeChild(log.lastChild);
}

async function post(path, body) {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json", "X-Dsrlab-Token": token}, body: JSON.stringify(body)});
  if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
  return r;
}

function drawSequence(res) {
  const svg = document.getElementById("sequence");
  svg.replaceChildren();
  const names = [res.client];
  for (const hop of res.hops) for (const e of [hop.from, hop.to]) if (!names.includes(nodeOf(e))) names.push(nodeOf(e));
  const width = 520, col = width / names.length, rowH = 36, top = 24;
  const height = top + res.hops.length * rowH + 16;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  names.forEach((n, i) => {
    const x = col * (i + 0.5);
    el("text", {x, y: 14, "text-anchor": "middle", "font-weight": 700}, svg, n);
    el("line", {x1: x, y1: 18, x2: x, y2: height, stroke: "#bbb"}, svg);
  });
  const colour = c => ({request: styles.request, tunnel: styles.tunnel, reply: styles.reply}[c] || {color: "#555"}).color;
  res.hops.forEach((hop, i) => {
    const x1 = col * (names.indexOf(nodeOf(hop.from)) + 0.5), x2 = col * (names.indexOf(nodeOf(hop.to)) + 0.5);
    const y = top + (i + 1) * rowH - 6;
    const line = el("line", {class: "seq-hop", x1, y1: y, x2, y2: y, stroke: colour(hop.class), "stroke-width": 2, "marker-end": `url(#seq-arrow)`}, svg);
    if (hop.class === "tunnel") line.setAttribute("stroke-dasharray", "6 4");
    el("text", {x: Math.min(x1, x2) + 4, y: y - 4, fill: colour(hop.class), "font-weight": 600}, svg, `${hop.n}. ${hop.step}`);
    const pkt = hop.packet.length > 72 ? hop.packet.slice(0, 71) + "…" : hop.packet;
    el("text", {x: 4, y: y + 11, fill: "#666", class: "seq-packet"}, svg, pkt);
    el("title", {}, line, hop.packet);
  });
  const defs = el("defs", {}, svg);
  const m = el("marker", {id: "seq-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse"}, defs);
  el("path", {d: "M0,0 L10,5 L0,10 z", fill: "#444"}, m);
}

// markHops puts on the graph, at each direction the flow took, the number
// of its first hop there (the reference README's steps, for the first
// packet); the badge's title lists them all.
function markHops(res) {
  const layer = document.getElementById("hops");
  if (!layer) return;
  layer.replaceChildren();
  const byDir = new Map();
  for (const hop of res.hops) {
    const k = hop.from + ">" + hop.to;
    if (!byDir.has(k)) byDir.set(k, []);
    byDir.get(k).push(hop);
  }
  for (const [k, hops] of byDir) {
    const d = dirs[k];
    if (!d) continue;
    const x1 = +d.line.getAttribute("x1"), y1 = +d.line.getAttribute("y1"), x2 = +d.line.getAttribute("x2"), y2 = +d.line.getAttribute("y2");
    const x = x1 + (x2 - x1) * 0.22, y = y1 + (y2 - y1) * 0.22;
    const g = el("g", {class: "hop-mark", "data-hop": hops[0].n}, layer);
    el("circle", {cx: x, cy: y, r: 10}, g);
    el("text", {x, y: y + 4, "text-anchor": "middle"}, g, String(hops[0].n));
    el("title", {}, g, hops.map(hp => `${hp.n}. ${hp.step}: ${hp.packet}`).join("\n"));
  }
}

document.getElementById("trace-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const out = document.getElementById("trace-verdict");
  out.className = "";
  out.textContent = "tracing…";
  try {
    const r = await post("/api/trace", {vip: document.getElementById("trace-vip").value.trim(),
      from: document.getElementById("trace-from").value, proto: document.getElementById("trace-proto").value});
    const res = await r.json();
    out.className = res.verdict.pass ? "pass" : "fail";
    out.textContent = (res.verdict.pass ? "PASS: " : "FAIL: ") + res.verdict.summary;
    drawSequence(res);
    markHops(res);
  } catch (e) {
    out.className = "fail";
    out.textContent = "trace failed: " + e.message;
  }
});

document.getElementById("capture-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const status = document.getElementById("capture-status");
  const [node, iface] = document.getElementById("capture-iface").value.split(":");
  const count = +document.getElementById("capture-count").value, seconds = +document.getElementById("capture-seconds").value;
  status.textContent = `capturing up to ${count} packets on ${node}:${iface} for at most ${seconds}s…`;
  try {
    const r = await post("/api/capture", {node, iface, count, seconds});
    const blob = await r.blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${scene.lab}-${node}-${iface}.pcap`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    status.textContent = `${blob.size} bytes of pcap from ${node}:${iface}`;
  } catch (e) {
    status.textContent = "capture failed: " + e.message;
  }
});

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("scene", e => drawScene(JSON.parse(e.data)));
  es.addEventListener("state", e => applyState(JSON.parse(e.data)));
  es.addEventListener("log", e => addLog(JSON.parse(e.data)));
  es.addEventListener("open", () => document.getElementById("log").replaceChildren());
  es.onerror = () => {
    document.body.dataset.up = "unknown";
    document.getElementById("status").textContent = "no answer from dsrlab ui: reconnecting…";
  };
}
connect();
