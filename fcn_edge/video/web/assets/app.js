// fcn-edge's live page: one card per stream the server lists, its MJPEG stream, its class
// legend, statistics pushed by Server-Sent Events and controls posted back as JSON.
// Everything from the server is put into the page as text, never as HTML.
"use strict";

// Over HTTP/1.1 a browser opens at most 6 connections to one host; an MJPEG stream holds
// one for good and the statistics another. Beyond this many streams the page fetches
// single frames instead, so the controls always find a free connection.
const MJPEG_LIMIT = 4;
const STAGES = [
  ["capture", "capture"], ["queue_wait", "queue wait"], ["preprocess", "preprocess"],
  ["network", "network"], ["decode", "decode"], ["inference", "inference"],
  ["smoothing", "smoothing"], ["render", "render"], ["write", "write"], ["end_to_end", "end to end"],
];
const MODES = [["overlay", "overlay"], ["mask", "mask"], ["both", "side by side"]];
const cards = new Map();

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function fixed(value, digits = 1) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function setStatus(state, text) {
  const status = document.getElementById("status");
  status.dataset.state = state;
  status.textContent = text;
}

class StreamCard {
  constructor(info, poll) {
    this.info = info;
    this.settings = null;
    this.pendingUntil = 0;  // ignore pushed settings while the user's own change is on its way
    this.image = el("img", { class: "video", alt: `segmentation of ${info.label}` });
    this.settingsLine = el("figcaption", { class: "settings-line" });
    this.state = el("span", { class: "state", "data-state": "running", text: "starting" });
    this.root = el("section", { class: "card", "data-stream": info.name },
      el("header", { class: "card-head" },
        el("h2", { text: info.name }), el("span", { class: "source", title: info.label, text: info.label }), this.state),
      el("div", { class: "card-body" },
        el("figure", { class: "view" }, this.image, this.settingsLine),
        el("aside", { class: "side" }, this.buildLegend(), this.buildStats(), this.buildControls())));
    if (poll) this.pollFrames();
    else this.image.src = `stream/${encodeURIComponent(info.name)}.mjpg`;
  }

  buildLegend() {
    this.rows = [];
    const list = el("ul", { class: "classes" });
    for (const cls of this.info.classes) {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = cls.colour;
      const fill = el("span");
      const pct = el("span", { class: "pct", text: "–" });
      const row = el("li", { "data-class": String(cls.index) },
        swatch, el("span", { class: "class-name", text: cls.name, title: cls.name }), el("span", { class: "bar" }, fill), pct);
      this.rows.push({ row, fill, pct });
      list.append(row);
    }
    return el("section", { class: "legend" }, el("h3", { text: "Classes (share of the frame)" }), list);
  }

  buildStats() {
    this.numbers = {};
    const numbers = el("dl", { class: "numbers" });
    const items = [["fps", "FPS"], ["frames_out", "frames"], ["dropped", "dropped"], ["reconnects", "reconnects"],
                   ["viewers", "viewers"], ["encode", "JPEG ms / kB"]];
    for (const [key, label] of items) {
      const dd = el("dd", { class: key, text: "–" });
      this.numbers[key] = dd;
      numbers.append(el("div", {}, el("dt", { text: label }), dd));
    }
    this.latency = {};
    const body = el("tbody");
    for (const [key, label] of STAGES) {
      const fill = el("span");
      const ms = el("td", { class: "ms", text: "–" });
      const row = el("tr", { "data-stage": key }, el("td", { text: label }), el("td", {}, el("div", { class: "bar" }, fill)), ms);
      row.hidden = true;
      this.latency[key] = { row, fill, ms };
      body.append(row);
    }
    return el("section", { class: "stats" }, el("h3", { text: "Pipeline" }), numbers,
      el("table", { class: "latency", "aria-label": "milliseconds per stage" }, body));
  }

  buildControls() {
    const form = el("form", { class: "controls", autocomplete: "off" });
    form.addEventListener("submit", (event) => event.preventDefault());
    const id = (key) => `${key}-${this.info.name}`;
    this.mode = el("select", { name: "mode", id: id("mode") },
      ...MODES.map(([value, label]) => el("option", { value, text: label })));
    this.alpha = el("input", { name: "alpha", id: id("alpha"), type: "range", min: "0", max: "255", step: "1" });
    this.alphaText = el("output", { for: id("alpha"), text: "–" });
    this.ignore = el("select", { name: "ignore_class", id: id("ignore") }, el("option", { value: "", text: "none" }),
      ...this.info.classes.map((cls) => el("option", { value: String(cls.index), text: cls.name })));
    this.filter = el("select", { name: "filter_mode", id: id("filter") },
      el("option", { value: "point", text: "point (nearest)" }),
      el("option", { value: "linear", text: this.info.scores ? "linear (smooth edges)" : "linear (needs scores)" }));
    this.pause = el("button", { type: "button", class: "pause", "aria-pressed": "false", text: "Pause" });
    this.message = el("p", { class: "message", role: "status", "aria-live": "polite" });

    this.mode.addEventListener("change", () => this.send({ mode: this.mode.value }));
    this.ignore.addEventListener("change", () =>
      this.send({ ignore_class: this.ignore.value === "" ? null : Number(this.ignore.value) }));
    this.filter.addEventListener("change", () => this.send({ filter_mode: this.filter.value }));
    this.pause.addEventListener("click", () => this.send({ paused: this.pause.getAttribute("aria-pressed") !== "true" }));
    let timer = null;
    this.alpha.addEventListener("input", () => {  // while dragging: at most one request per 150 ms
      this.alphaText.textContent = this.alpha.value;
      this.pendingUntil = performance.now() + 1000;
      if (timer === null) timer = setTimeout(() => { timer = null; this.send({ alpha: Number(this.alpha.value) }); }, 150);
    });
    if (!this.info.controls) for (const input of [this.mode, this.alpha, this.ignore, this.filter, this.pause]) input.disabled = true;

    form.append(
      el("label", { for: id("mode"), text: "view" }), this.mode,
      el("label", { for: id("alpha"), text: "alpha" }), el("div", { class: "alpha-row" }, this.alpha, this.alphaText),
      el("label", { for: id("ignore"), text: "ignore class" }), this.ignore,
      el("label", { for: id("filter"), text: "filter" }), this.filter,
      this.pause, this.message);
    return el("section", { class: "control-panel" }, el("h3", { text: "Controls" }), form);
  }

  async send(change) {
    this.pendingUntil = performance.now() + 1000;
    let reply;
    try {
      const response = await fetch(`api/control/${encodeURIComponent(this.info.name)}`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(change),
      });
      const body = await response.json().catch(() => ({}));
      reply = response.ok ? body : { error: body.error || `the server answered ${response.status}` };
    } catch (error) {
      reply = { error: `the control did not reach the device: ${error.message}` };
    }
    this.pendingUntil = 0;
    if (reply.error) {
      this.showMessage(`Refused: ${reply.error}`, true);
      if (this.settings) this.showSettings(this.settings, true);  // back to what the pipeline really does
    } else {
      this.showMessage("", false);
      this.showSettings(reply.settings, true);
    }
  }

  showMessage(text, isError) {
    this.message.textContent = text;
    this.message.classList.toggle("error", isError);
  }

  showSettings(settings, force) {
    this.settings = settings;
    if (!force && performance.now() < this.pendingUntil) return;
    const keep = (input) => !force && document.activeElement === input;
    if (!keep(this.mode)) this.mode.value = settings.mode;
    if (!keep(this.alpha)) { this.alpha.value = String(Math.round(settings.alpha)); this.alphaText.textContent = this.alpha.value; }
    if (!keep(this.ignore)) this.ignore.value = settings.ignore_class === null ? "" : String(settings.ignore_class);
    if (!keep(this.filter) && settings.filter_mode) this.filter.value = settings.filter_mode;
    this.pause.setAttribute("aria-pressed", String(settings.paused));
    this.pause.textContent = settings.paused ? "Resume" : "Pause";
    const ignored = settings.ignore_class === null ? "none" : this.info.classes[settings.ignore_class].name;
    this.settingsLine.textContent =
      `${settings.mode} · alpha ${Math.round(settings.alpha)} · ignore ${ignored} · filter ${settings.filter_mode || "–"}`;
    this.rows.forEach(({ row }, index) => row.classList.toggle("ignored", index === settings.ignore_class));
  }

  update(snap) {
    const state = snap.state || "running";
    this.state.dataset.state = state;
    this.state.textContent = state === "ended" && snap.stopped_by ? `ended (${snap.stopped_by})` : state;
    const view = snap.view || {};
    this.numbers.fps.textContent = fixed(snap.fps);
    this.numbers.frames_out.textContent = snap.frames_out ?? "–";
    this.numbers.dropped.textContent = snap.dropped ?? "–";
    this.numbers.reconnects.textContent = snap.reconnects ?? "–";
    this.numbers.viewers.textContent = view.viewers ?? "–";
    this.numbers.encode.textContent = `${fixed(view.encode_ms)} / ${fixed(view.jpeg_kb, 0)}`;
    const latency = snap.latency_ms || {};
    const scale = Math.max(1, latency.end_to_end || 0, ...Object.values(latency));
    for (const [key] of STAGES) {
      const cell = this.latency[key];
      const ms = latency[key];
      cell.row.hidden = ms === undefined;
      if (ms !== undefined) {
        cell.ms.textContent = fixed(ms);
        cell.fill.style.width = `${Math.min(100, (100 * ms) / scale)}%`;
      }
    }
    (snap.shares || []).forEach((share, index) => {
      const row = this.rows[index];
      if (!row) return;
      row.fill.style.width = `${(100 * share).toFixed(1)}%`;
      row.pct.textContent = `${(100 * share).toFixed(1)}%`;
      row.fill.style.background = this.info.classes[index].colour;
    });
    if (snap.settings) this.showSettings(snap.settings, false);
  }

  async pollFrames() {
    let after = 0;
    const name = encodeURIComponent(this.info.name);
    for (;;) {
      try {
        const response = await fetch(`frame/${name}.jpg?after=${after}`, { cache: "no-store" });
        if (!response.ok) throw new Error(String(response.status));
        after = Number(response.headers.get("X-Frame-Number")) || after;
        const url = URL.createObjectURL(await response.blob());
        const old = this.image.src;
        this.image.src = url;
        if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      } catch (error) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }
}

function connectEvents() {
  const events = new EventSource("events");
  events.addEventListener("open", () => setStatus("live", "live"));
  events.addEventListener("error", () => setStatus("lost", "reconnecting"));
  events.addEventListener("stats", (event) => {
    const data = JSON.parse(event.data);
    for (const [name, snap] of Object.entries(data.streams)) {
      const card = cards.get(name);
      if (card) card.update(snap);
    }
  });
}

async function main() {
  let info;
  try {
    const response = await fetch("api/streams", { cache: "no-store" });
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    info = await response.json();
  } catch (error) {
    setStatus("lost", `cannot list the streams: ${error.message}`);
    return;
  }
  document.title = info.title;
  const models = [...new Set(info.streams.map((stream) => stream.model))];
  document.getElementById("model").textContent = models.join(", ");
  const grid = document.getElementById("grid");
  grid.dataset.count = String(info.streams.length);
  const poll = info.streams.length > MJPEG_LIMIT;
  for (const stream of info.streams) {
    const card = new StreamCard(stream, poll);
    cards.set(stream.name, card);
    grid.append(card.root);
  }
  connectEvents();
}

main();
