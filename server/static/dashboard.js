// tokenwire dashboard: several live streams side by side, over the bundled client. A stream
// shows its reasoning, tool calls (the demo tools run here, in a client-side tool loop), JSON
// output as it fills in, and the image sent with its prompt.
import { imagePart, parsePartialJson, TokenwireClient } from "/clients/js/src/index.js";
import { DEMO_TOOLS, EXAMPLE_SCHEMA } from "./demo-tools.js";

const SAMPLE_MS = 250; // sparkline and live metrics refresh (~4×/s)
const SAMPLES = 48; // points kept per sparkline (12 s)
const STATE_TEXT = {
  idle: "offline",
  connecting: "connecting…",
  open: "connected",
  reconnecting: "reconnecting…",
  closed: "closed",
};

const $ = (id) => document.getElementById(id);
const els = {
  form: $("start-form"),
  provider: $("provider"),
  model: $("model"),
  prompt: $("prompt"),
  topic: $("topic"),
  audience: $("audience"),
  tone: $("tone"),
  duration: $("duration"),
  start: $("start"),
  promptFields: $("prompt-fields"),
  briefFields: $("brief-fields"),
  formError: $("form-error"),
  image: $("image"),
  imagePreview: $("image-preview"),
  imageThumb: $("image-thumb"),
  imageName: $("image-name"),
  imageRemove: $("image-remove"),
  reasoning: $("reasoning"),
  format: $("format"),
  schemaField: $("schema-field"),
  schema: $("schema"),
  streams: $("streams"),
  notice: $("notice"),
  conn: document.querySelector('[data-testid="connection"]'),
  template: $("panel-template"),
  reasoningTemplate: $("reasoning-template"),
  toolTemplate: $("tool-card-template"),
  jsonTemplate: $("json-template"),
};

const token = new URLSearchParams(location.search).get("token") || undefined;
const client = new TokenwireClient(location.origin, { token });
const live = new Set(); // panels of streams that have not ended
let timer = null;
let attached = null; // the image to send with the prompt: {part, name, size}

// ---- formatting ------------------------------------------------------------------------------

const dash = "—";
const num = (value, digits = 0) =>
  value === null || value === undefined || !Number.isFinite(value)
    ? dash
    : value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

function formatCost(usd) {
  if (usd === null || usd === undefined) return dash;
  if (usd === 0) return "$0";
  if (usd >= 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toLocaleString("en-US", { maximumSignificantDigits: 2, maximumFractionDigits: 10 })}`;
}

// The gateway's retries and failovers before the first token (`notice` messages), as one short
// line: the try under way while the stream waits for its first token, then a summary.
function describeNotices(notices, waiting) {
  const last = notices.at(-1);
  if (!last) return "";
  if (waiting && last.code === "retrying") {
    const delay = typeof last.delay_s === "number" ? ` in ${Number(last.delay_s.toFixed(2))} s` : "";
    return `retrying ${last.provider} (${last.attempt})${delay}…`;
  }
  const parts = [];
  const failover = notices.findLast((n) => n.code === "failover");
  if (failover) parts.push(`failed over to ${failover.provider}`);
  const retries = notices.filter((n) => n.code === "retrying").length;
  if (retries) parts.push(`${retries} ${retries === 1 ? "retry" : "retries"}`);
  return parts.join(" · ");
}

function describeError(error) {
  const code = error?.code ?? "error";
  const message = error?.message ?? String(error);
  const retry = typeof error?.retryAfter === "number" ? ` (retry in ${num(error.retryAfter, error.retryAfter % 1 ? 1 : 0)} s)` : "";
  return `${code}: ${message}${retry}`;
}

// ---- connection --------------------------------------------------------------------------------

function showConnection() {
  const state = client.state;
  const n = client.reconnects;
  const parts = [STATE_TEXT[state] ?? state];
  if (state === "open" && client.transport === "sse") parts.push("HTTP fallback");
  parts.push(`${n} reconnect${n === 1 ? "" : "s"}`);
  els.conn.dataset.state = state;
  els.conn.querySelector(".conn-text").textContent = parts.join(" · ");
}

function showNotice(text) {
  els.notice.textContent = text;
  els.notice.hidden = !text;
}

function fillProviders(providers) {
  const select = els.provider;
  const previous = select.value;
  const options = providers.map((p) => {
    const option = new Option(p.configured ? p.name : `${p.name} (not configured)`, p.name);
    option.disabled = !p.configured;
    option.dataset.defaultModel = p.default_model ?? "";
    return option;
  });
  if (!options.length) options.push(new Option("gateway default", "")); // e.g. over the HTTP fallback
  select.replaceChildren(...options);
  const keep = providers.find((p) => p.configured && p.name === previous) ?? providers.find((p) => p.configured);
  select.value = keep?.name ?? "";
  if (!keep || keep.name !== previous) prefillModel();
  els.start.disabled = false;
}

function prefillModel() {
  els.model.value = els.provider.selectedOptions[0]?.dataset.defaultModel ?? "";
}

client.on("state", showConnection);
client.on("reconnect", showConnection);
client.on("ready", (ready) => {
  showNotice("");
  fillProviders(ready.providers ?? []);
  showConnection();
});
client.on("error", (error) => showNotice(`Connection: ${describeError(error)}`));

// ---- the form ----------------------------------------------------------------------------------

const mode = () => els.form.elements.mode.value;

function setMode() {
  const brief = mode() === "brief";
  els.briefFields.hidden = els.briefFields.disabled = !brief;
  els.promptFields.hidden = els.promptFields.disabled = brief;
}

function showFormError(text) {
  els.formError.textContent = text;
  els.formError.hidden = !text;
}

// The request of the form; throws a message for the form when a field cannot be used.
function buildRequest() {
  const request = {};
  if (els.provider.value) request.provider = els.provider.value;
  const model = els.model.value.trim();
  if (model) request.model = model;
  if (mode() === "brief") {
    const brief = { topic: els.topic.value.trim() };
    const audience = els.audience.value.trim();
    const tone = els.tone.value.trim();
    if (audience) brief.audience = audience;
    if (tone) brief.tone = tone;
    request.brief = brief;
    if (els.duration.value) request.plan = { target_duration_seconds: Number(els.duration.value) };
    return request;
  }
  const text = els.prompt.value;
  if (attached) request.messages = [{ role: "user", content: [{ type: "text", text }, attached.part] }];
  else request.prompt = text;
  const reasoning = els.reasoning.value;
  if (reasoning) request.reasoning = reasoning === "on" ? {} : { effort: reasoning };
  const format = els.format.value;
  if (format === "json") request.response_format = { type: "json" };
  if (format === "json_schema") request.response_format = { type: "json_schema", name: "response", schema: readSchema() };
  const tools = [...els.form.querySelectorAll('input[name="tool"]:checked')].map((box) => box.value);
  // A record of tools with `execute`: the client runs the tool loop, every step on this socket.
  if (tools.length) request.tools = Object.fromEntries(tools.map((name) => [name, DEMO_TOOLS[name]]));
  return request;
}

function readSchema() {
  let schema;
  try {
    schema = JSON.parse(els.schema.value);
  } catch (error) {
    throw `The JSON Schema is not JSON: ${error.message}`;
  }
  if (!schema || typeof schema !== "object" || Array.isArray(schema)) throw "The JSON Schema must be an object.";
  return schema;
}

function showFormat() {
  els.schemaField.hidden = els.format.value !== "json_schema";
}

// ---- the image ---------------------------------------------------------------------------------

function attach(image) {
  attached = image;
  els.imagePreview.hidden = !image;
  els.imageThumb.src = image ? image.part.url : "";
  els.imageName.textContent = image ? `${image.name} · ${num(image.size / 1024, 1)} KiB` : "";
}

els.image.addEventListener("change", async () => {
  const file = els.image.files?.[0];
  els.image.value = ""; // the same file can be picked again
  if (!file) return;
  try {
    attach({ part: await imagePart(file), name: file.name, size: file.size }); // checked here: format, 5 MiB
    showFormError("");
  } catch (error) {
    attach(null);
    showFormError(error.message);
  }
});
els.imageRemove.addEventListener("click", () => {
  attach(null);
  els.image.focus();
});

els.form.addEventListener("change", (event) => {
  if (event.target.name === "mode") setMode();
  if (event.target === els.provider) prefillModel();
  if (event.target === els.format) showFormat();
});

els.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    els.form.requestSubmit();
  }
});

els.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const blank = mode() === "brief" ? els.topic : els.prompt;
  if (!blank.value.trim()) {
    els.formError.textContent = mode() === "brief" ? "Write a topic first." : "Write a prompt first.";
    els.formError.hidden = false;
    blank.focus();
    return;
  }
  let request;
  try {
    request = buildRequest();
  } catch (message) {
    showFormError(String(message));
    return;
  }
  showFormError("");
  openPanel(request);
});

// ---- panels ------------------------------------------------------------------------------------

function openPanel(request) {
  const node = els.template.content.firstElementChild.cloneNode(true);
  const part = (id) => node.querySelector(`[data-testid="${id}"]`);
  const panel = {
    node,
    request,
    body: node.querySelector(".panel-body"),
    parts: part("panel-parts"),
    text: part("panel-text"),
    status: part("panel-status"),
    cancel: part("panel-cancel"),
    error: part("panel-error"),
    notice: part("panel-notice"),
    tokens: part("panel-tokens"),
    tps: part("panel-tps"),
    ttft: part("panel-ttft"),
    cost: part("panel-cost"),
    line: node.querySelector(".spark-line"),
    fill: node.querySelector(".spark-fill"),
    stick: true, // follow the text until the user scrolls up
    samples: [0],
    chars: 0, // text received, for the sparkline's rate (the gateway's estimate: 4 chars a token)
    lastTokens: 0,
    lastAt: performance.now(),
    done: null,
    stream: null,
    reasoning: null, // the reasoning block text is streaming into
    cards: new Map(), // tool cards by call id
    json: null, // the JSON view of a json / json_schema stream
  };
  panel.body.addEventListener("scroll", () => {
    const b = panel.body;
    panel.stick = b.scrollTop + b.clientHeight >= b.scrollHeight - 16;
  });
  panel.cancel.addEventListener("click", () => {
    panel.cancel.disabled = true;
    panel.cancel.textContent = "Cancelling…";
    panel.stream.cancel(); // may end the stream at once (it was not sent yet)
  });
  part("panel-close").addEventListener("click", () => closePanel(panel));
  els.streams.prepend(node);

  showImage(panel);
  if (request.response_format) openJsonView(panel);
  panel.stream = client.stream(request, {
    onStart: () => update(panel),
    onNotice: () => update(panel), // a failover changes the provider/model label too
    onChunk: (chunk) => append(panel, chunk.content),
    onPart: (p) => renderPart(panel, p),
    onPartialObject: (value) => showObject(panel, value),
    onDone: (done) => finish(panel, done, null),
    onError: (error) => finish(panel, null, error),
  });
  node.dataset.streamId = panel.stream.id;
  node.setAttribute("aria-label", `stream ${panel.stream.id}`);
  const what = request.brief
    ? `brief: ${request.brief.topic}${request.plan ? ` · ${request.plan.target_duration_seconds} s` : ""}`
    : promptText(request).trim();
  const title = node.querySelector(".panel-id");
  title.append(Object.assign(document.createElement("code"), { textContent: panel.stream.id }));
  title.append(Object.assign(document.createElement("span"), { className: "panel-what", textContent: what }));
  title.title = what;
  panel.text.setAttribute("aria-label", `Text of stream ${panel.stream.id}`);
  live.add(panel);
  update(panel);
  if (timer === null) timer = setInterval(tick, SAMPLE_MS);
}

function promptText(request) {
  if (request.prompt !== undefined) return request.prompt;
  const content = request.messages.at(-1).content;
  return content.filter((p) => p.type === "text").map((p) => p.text).join("");
}

function follow(panel) {
  if (panel.stick) panel.body.scrollTop = panel.body.scrollHeight;
}

function append(panel, content) {
  panel.chars += content.length;
  panel.text.append(content);
  follow(panel);
}

// ---- parts: reasoning, tool calls, JSON, the image ---------------------------------------------

function clone(template) {
  const node = template.content.firstElementChild.cloneNode(true);
  const part = (id) => node.querySelector(`[data-testid="${id}"]`);
  return { node, part };
}

function renderPart(panel, part) {
  switch (part.type) {
    case "reasoning":
      return addReasoning(panel, part.text);
    case "text":
      return closeReasoning(panel); // the reasoning led here: fold it away
    case "tool-call-start":
      closeReasoning(panel);
      return openToolCard(panel, part);
    case "tool-call-delta":
      return growArguments(panel.cards.get(part.callId), part.argumentsDelta);
    case "tool-call-end":
      return endToolCall(panel, panel.cards.get(part.callId), part);
    case "tool-result":
      return showToolResult(panel.cards.get(part.callId), part);
    case "step-start":
      closeReasoning(panel);
      if (part.step > 0) panel.parts.append(Object.assign(document.createElement("p"), { className: "step", textContent: `step ${part.step + 1}` }));
      return undefined;
    default: // step-end
      return undefined;
  }
}

function addReasoning(panel, text) {
  if (!panel.reasoning) {
    const { node, part } = clone(els.reasoningTemplate);
    panel.reasoning = { node, text: part("reasoning-text"), size: node.querySelector(".reasoning-size") };
    panel.parts.append(node);
  }
  const block = panel.reasoning;
  block.text.append(text);
  block.size.textContent = `· ${countWords(block.text.textContent)} words`;
  follow(panel);
}

function closeReasoning(panel) {
  if (panel.reasoning) panel.reasoning.node.open = false;
  panel.reasoning = null;
}

const countWords = (text) => text.split(/\s+/).filter(Boolean).length;

function openToolCard(panel, part) {
  const { node, part: get } = clone(els.toolTemplate);
  const card = { node, args: get("tool-args"), state: get("tool-state"), result: get("tool-result"), argsText: "" };
  node.dataset.callId = part.callId;
  get("tool-name").textContent = part.name;
  panel.cards.set(part.callId, card);
  panel.parts.append(node);
  follow(panel);
}

function setToolState(card, state, text) {
  card.node.dataset.state = state;
  card.state.textContent = text;
}

// The arguments fill in live: their JSON so far, parsed tolerantly and pretty-printed.
function growArguments(card, delta) {
  card.argsText += delta;
  const { value } = parsePartialJson(card.argsText);
  card.args.textContent = value === undefined ? card.argsText : JSON.stringify(value, null, 2);
}

function endToolCall(panel, card, part) {
  if (part.argumentsError) {
    card.args.textContent = card.argsText;
    setToolState(card, "error", "invalid arguments");
    return;
  }
  card.args.textContent = JSON.stringify(part.arguments, null, 2);
  const runs = panel.request.tools && !Array.isArray(panel.request.tools) && panel.request.tools[part.name]?.execute;
  setToolState(card, runs ? "running" : "called", runs ? "running…" : "called");
}

function showToolResult(card, part) {
  card.result.hidden = false;
  if (part.error !== undefined) {
    card.result.textContent = part.error;
    setToolState(card, "error", "error");
  } else {
    card.result.textContent = typeof part.output === "string" ? part.output : JSON.stringify(part.output, null, 2);
    setToolState(card, "done", "done");
  }
}

function openJsonView(panel) {
  const { node, part } = clone(els.jsonTemplate);
  panel.json = { node, badge: part("json-badge"), pretty: part("panel-json"), error: part("json-error") };
  panel.parts.append(node);
  panel.text.hidden = true; // the pretty view shows it; the raw text returns if it is not valid
}

function showObject(panel, value) {
  panel.json.pretty.textContent = JSON.stringify(value, null, 2);
  follow(panel);
}

// done.object: valid (against the schema, when there is one); done.object_error: why not.
function judgeJson(panel, done) {
  const { badge, error } = panel.json;
  if (done && "object" in done) {
    badge.dataset.valid = "true";
    badge.textContent = panel.request.response_format.type === "json_schema" ? "valid · matches the schema" : "valid JSON";
  } else if (done?.object_error) {
    badge.dataset.valid = "false";
    badge.textContent = "invalid";
    error.textContent = done.object_error;
    error.hidden = false;
    panel.text.hidden = false;
  } else {
    badge.dataset.valid = "unknown";
    badge.textContent = "incomplete";
  }
}

function showImage(panel) {
  const image = panel.request.messages?.at(-1).content.find?.((p) => p.type === "image");
  if (!image) return;
  const img = panel.node.querySelector('[data-testid="panel-image"]');
  img.src = image.url;
  img.hidden = false;
}

function finish(panel, done, error) {
  panel.done = done;
  const stream = panel.stream;
  panel.text.textContent = stream.text; // at `done`: the gateway's whole text
  closeReasoning(panel);
  if (panel.json) judgeJson(panel, done);
  follow(panel);
  if (error) {
    panel.error.textContent = describeError(error);
    panel.error.hidden = false;
  }
  if (live.delete(panel)) sample(panel, performance.now());
  update(panel);
}

function closePanel(panel) {
  panel.stream.cancel(); // a no-op once it has ended
  live.delete(panel);
  const next = panel.node.nextElementSibling ?? panel.node.previousElementSibling;
  panel.node.remove();
  (next?.querySelector('[data-testid="panel-close"]') ?? els.start).focus();
}

function update(panel) {
  const { stream, done, node } = panel;
  const status = stream.status;
  const ended = status === "done" || status === "cancelled" || status === "error";
  node.dataset.status = status;
  panel.status.textContent = status;
  const provider = stream.provider ?? panel.request.provider ?? "default provider";
  const model = stream.model ?? panel.request.model ?? "default model";
  const reason = done && !["stop", "cancelled"].includes(done.finish_reason) ? ` · finished: ${done.finish_reason}` : "";
  node.querySelector(".panel-model").textContent = `${provider} / ${model}${reason}`;
  showNotices(panel, ended);
  if (ended) {
    panel.cancel.disabled = true;
    panel.cancel.textContent = "Cancel";
  }
  const stats = stream.stats;
  const metrics = done?.metrics ?? null;
  panel.tokens.textContent = num(stats.tokens);
  panel.tps.textContent = num(stats.tokensPerSecond ?? metrics?.tokens_per_second, 1);
  const ttft = stats.ttftMs ?? metrics?.ttft_ms;
  panel.ttft.textContent = ttft === null || ttft === undefined ? dash : `${num(ttft)} ms`;
  panel.cost.textContent = formatCost(metrics?.estimated_cost_usd);
}

function showNotices(panel, ended) {
  const notices = panel.stream.notices;
  const line = panel.notice;
  if (!notices.length) {
    line.hidden = true;
    return;
  }
  const text = describeNotices(notices, !ended && panel.stream.stats.chunks === 0);
  if (line.textContent !== text) line.textContent = text;
  line.dataset.notice = notices.at(-1).code;
  line.title = notices.map((n) => n.message).join("\n"); // the gateway's own words, in full
  line.hidden = false;
}

function sample(panel, now) {
  const tokens = panel.chars / 4;
  const seconds = (now - panel.lastAt) / 1000;
  if (seconds < 0.1) return; // a window too short for a meaningful rate
  panel.samples.push(Math.max(0, tokens - panel.lastTokens) / seconds);
  if (panel.samples.length > SAMPLES) panel.samples.shift();
  panel.lastTokens = tokens;
  panel.lastAt = now;
  drawSparkline(panel);
}

function drawSparkline(panel) {
  const values = panel.samples;
  const max = Math.max(1, ...values);
  const step = 120 / Math.max(1, values.length - 1); // stretched until the window is full
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(30 - (v / max) * 27).toFixed(1)}`);
  panel.line.setAttribute("points", points.join(" "));
  const last = ((values.length - 1) * step).toFixed(1);
  panel.fill.setAttribute("points", values.length ? `0,32 ${points.join(" ")} ${last},32` : "");
}

function tick() {
  const now = performance.now();
  for (const panel of live) {
    sample(panel, now);
    update(panel);
  }
  if (!live.size) {
    clearInterval(timer);
    timer = null;
  }
}

// ---- go ----------------------------------------------------------------------------------------

setMode();
els.schema.value = JSON.stringify(EXAMPLE_SCHEMA, null, 2);
showFormat();
showConnection();
client.connect().catch(() => {}); // failures arrive as 'error' and 'state' events
