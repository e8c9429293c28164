// seaway status page: draws /status.json (keys documented in proxy/app/status.py) every
// 2 seconds. Every value is set with textContent: names come from manifests.
"use strict";

const REFRESH_MS = 2000;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function num(n) { return n === null || n === undefined ? "-" : Number(n).toLocaleString("en"); }
function rate(n) { return n === null || n === undefined ? "-" : Number(n).toFixed(1); }
function pct(n) { return n === null || n === undefined ? "-" : (100 * n).toFixed(2) + " %"; }
function secs(s) {
  if (s === null || s === undefined) return "-";
  if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
  if (s < 1) return (s * 1000).toFixed(1) + " ms";
  return s.toFixed(2) + " s";
}
function when(t) { return t ? new Date(t * 1000).toLocaleTimeString("en-GB") : "never"; }
function uptime(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return (d ? d + "d " : "") + (h ? h + "h " : "") + m + "m " + Math.floor(s % 60) + "s";
}
function badge(text, kind) { return el("span", { class: "badge " + kind }, text); }
function cell(value, cls) { return el("td", cls ? { class: cls } : {}, value); }

function fillTable(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...rows);
  if (!rows.length) {
    const cols = document.querySelectorAll("#" + id + " th").length;
    body.append(el("tr", {}, el("td", { colspan: cols, class: "muted" }, "none")));
  }
}

function drawTotals(s) {
  const t = s.totals;
  const cards = [
    ["requests", num(t.requests)], ["requests/s", rate(t.rate)],
    ["errors (5xx)", pct(t.error_rate)], ["p99", secs(t.p99_seconds)],
    ["L4 connections", num(t.connections)], ["service ports", num(s.service_ports.length)],
    ["routes", num(s.routes.length)],
  ];
  document.getElementById("totals").replaceChildren(...cards.map(([label, value]) =>
    el("div", { class: "card", "data-card": label },
       el("div", { class: "value" }, value), el("div", { class: "label" }, label))));
}

function drawSources(s) {
  const box = document.getElementById("sources");
  box.replaceChildren(...s.sources.map(src => {
    const kind = src.state === "ok" ? "ok" : src.state === "loading" ? "warn" : "bad";
    const head = el("p", {}, badge(src.state, kind), " ", el("b", {}, src.kind), " ",
                    src.path ? el("code", {}, src.path) : "",
                    src.kind === "files" ? ` (${src.files} files, ${src.objects} objects)` : "");
    const parts = [head];
    for (const e of src.errors || []) parts.push(el("p", { class: "error" }, e.message));
    if (src.watches) {
      parts.push(el("table", {}, el("tbody", {}, ...src.watches.map(w => el("tr", {},
        cell(w.resource), cell(badge(w.state, w.state === "watching" ? "ok" : "bad")),
        cell(`${w.lists} lists, ${w.events} events, ${w.failures} failures`),
        cell(w.last_error, "error"))))));
    }
    return el("div", {}, ...parts);
  }));
}

function drawPorts(s) {
  fillTable("ports", s.service_ports.map(p => {
    const eps = el("td", {}, ...p.endpoints.map(e => {
      const state = e.terminating ? "terminating" : e.ready ? "ready" : e.serving ? "serving" : "down";
      const out = (e.ejected || []).map(j => `ejected by ${j.proxy} (${j.reason}) in ${j.processes}`);
      if (e.health === "failing") out.unshift("failing its health checks");
      const title = state + (e.used ? ", in use" : ", not used") + (out.length ? "; " + out.join("; ") : "");
      return el("span", { class: "ep " + state + (out.length ? " out" : ""), title },
                e.address + (out.length ? " \u2298" : ""));
    }));
    if (!p.endpoints.length) eps.append(el("span", { class: "muted" }, "no endpoints"));
    const addr = p.cluster_ips.map(ip => ip + ":" + p.port).join(" ") +
                 (p.node_port ? " node:" + p.node_port : "");
    const h = p.http, l = p.l4;
    return el("tr", { "data-port": p.name },
      cell(el("b", {}, p.name)), cell(el("code", {}, p.protocol + " " + addr)), eps,
      cell(h ? num(h.requests) : "-", "num"), cell(h ? rate(h.rate) : "-", "num"),
      cell(h ? pct(h.error_rate) : "-", "num"), cell(h ? secs(h.p99_seconds) : "-", "num"),
      cell(l ? num(l.connections) : "-", "num"), cell(l ? num(l.active) : "-", "num"),
      cell(l ? rate(l.rate) : "-", "num"));
  }));
}

function drawRoutes(s) {
  fillTable("routes", s.routes.map(r => el("tr", {},
    cell(r.host), cell(el("code", {}, r.path)),
    cell(r.status ? el("span", { class: "error" }, r.backend + " (" + r.status + ")") : r.backend),
    cell(el("span", { title: r.source }, r.ingress)))));
}

function drawSyncs(s) {
  fillTable("syncs", s.syncs.map(x => el("tr", {},
    cell(x.dataplane), cell(num(x.syncs), "num"), cell(num(x.failures), "num"),
    cell(when(x.last_success)), cell(secs(x.duration_seconds), "num"),
    cell(x.last_error, "error"))));
}

function drawWorkers(s) {
  fillTable("workers", s.workers.map(w => el("tr", {},
    cell(w.index === 0 ? "0 (daemon)" : w.index), cell(w.pid, "num"),
    cell(badge(w.alive ? "running" : "down", w.alive ? "ok" : "bad")),
    cell(num(w.restarts), "num"), cell(when(w.started)))));
}

function draw(s) {
  const state = document.getElementById("state");
  state.textContent = s.draining ? "draining" : s.ready ? "ready" : "not ready";
  state.className = "badge " + (s.draining ? "warn" : s.ready ? "ok" : "bad");
  document.getElementById("meta").textContent =
    `up ${uptime(s.uptime_seconds)} · config generation ${s.generation ?? "-"}`;
  drawTotals(s); drawSources(s); drawSyncs(s); drawPorts(s); drawRoutes(s); drawWorkers(s);
  document.getElementById("updated").textContent = "updated " + when(s.time);
  document.body.dataset.generation = String(s.generation);
}

async function refresh() {
  try {
    const response = await fetch("/status.json", { cache: "no-store" });
    draw(await response.json());
  } catch (err) {
    document.getElementById("updated").textContent = "cannot reach seaway: " + err;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
