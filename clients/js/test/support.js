// Test helpers: WebSocket wrappers around `ws` (count, break, tamper), a scripted in-memory
// WebSocket for protocol edge cases, and a fake OpenAI upstream built on node:http.
import { createServer } from 'node:http';
import { WebSocket } from 'ws';
import { TokenwireClient } from '../src/index.js';
import { freePort } from './gateway.js';

export { WebSocket };

/** A `ws` WebSocket subclass that counts constructions and records the frames sent. */
export function countingWebSocket() {
  const record = { count: 0, /** @type {any[]} */ sent: [] };
  class CountingWebSocket extends WebSocket {
    constructor(url, ...rest) {
      super(url, ...rest);
      record.count += 1;
    }

    send(data, ...rest) {
      record.sent.push(JSON.parse(String(data)));
      return super.send(data, ...rest);
    }
  }
  return { WebSocket: CountingWebSocket, record };
}

/**
 * A `ws` WebSocket subclass that counts the streams running on each socket as the client sees
 * them: from a `start` or `resume` sent until its refusal or terminal message arrives (never fewer
 * than the gateway counts). `record.peak` is the most on one socket at once; `record.started`
 * lists the ids of the `start`s sent, in order.
 */
export function streamCountingWebSocket() {
  const record = { peak: 0, /** @type {string[]} */ started: [] };
  class StreamCountingWebSocket extends WebSocket {
    /** @type {Set<string>} */
    #running = new Set();

    send(data, ...rest) {
      const msg = JSON.parse(String(data));
      if (msg.type === 'start' || msg.type === 'resume') {
        this.#running.add(msg.id);
        record.peak = Math.max(record.peak, this.#running.size);
      }
      if (msg.type === 'start') record.started.push(msg.id);
      return super.send(data, ...rest);
    }

    set onmessage(listener) {
      super.onmessage = listener
        ? (event) => {
            const msg = JSON.parse(String(event.data));
            if ((msg.type === 'done' || msg.type === 'error') && typeof msg.id === 'string') this.#running.delete(msg.id);
            listener(event);
          }
        : null;
    }

    get onmessage() {
      return super.onmessage;
    }
  }
  return { WebSocket: StreamCountingWebSocket, record };
}

/** A WebSocket constructor whose sockets never open: they dial a port nobody listens on. */
export async function unreachableWebSocket() {
  const deadPort = await freePort();
  const record = { count: 0 };
  class UnreachableWebSocket extends WebSocket {
    constructor(url) {
      super(String(url).replace(/:\/\/[^/]+/, `://127.0.0.1:${deadPort}`));
      record.count += 1;
    }
  }
  return { WebSocket: UnreachableWebSocket, record };
}

/** A `ws` WebSocket that swallows the first server frame matching `drop`. */
export function droppingWebSocket(drop) {
  let dropped = false;
  return class DroppingWebSocket extends WebSocket {
    set onmessage(listener) {
      super.onmessage = listener
        ? (event) => {
            if (!dropped && drop(JSON.parse(String(event.data)))) {
              dropped = true;
              return;
            }
            listener(event);
          }
        : null;
    }

    get onmessage() {
      return super.onmessage;
    }
  };
}

/**
 * An in-memory WebSocket driven by the test: `socket.serverOpen()`, `socket.serverSend(msg)`,
 * `socket.serverClose(code, reason)`; `socket.sent` holds the parsed client frames.
 */
export function scriptedWebSocket() {
  /** @type {ScriptedSocket[]} */
  const sockets = [];
  class ScriptedSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      /** @type {any[]} */
      this.sent = [];
      this.onopen = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      sockets.push(this);
    }

    send(data) {
      if (this.readyState !== 1) throw new Error('not open');
      this.sent.push(JSON.parse(data));
    }

    close(code = 1000, reason = '') {
      if (this.readyState >= 2) return;
      this.readyState = 3;
      queueMicrotask(() => this.onclose?.({ code, reason }));
    }

    serverOpen(ready = READY) {
      this.readyState = 1;
      this.onopen?.({});
      if (ready) this.serverSend(ready);
    }

    serverSend(msg) {
      this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
    }

    serverClose(code = 1006, reason = '') {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
  }
  return { WebSocket: ScriptedSocket, sockets };
}

/**
 * A client on a scripted socket that has opened and sent `ready` (no reconnecting unless
 * `options` say); `socket` is that socket, `fake.sockets` every one the client opened.
 */
export async function scriptedClient(options = {}) {
  const fake = scriptedWebSocket();
  const client = new TokenwireClient('http://gateway.test:8000', { WebSocket: fake.WebSocket, reconnect: false, ...options });
  const ready = client.connect();
  fake.sockets[0].serverOpen(READY);
  await ready;
  return { client, socket: fake.sockets[0], fake };
}

export const READY = {
  type: 'ready',
  protocol: 1,
  server: { name: 'tokenwire', version: 'test' },
  providers: [{ name: 'rulebased', streaming: 'native', configured: true, default_model: 'script' }],
  limits: { max_streams: 16, max_message_bytes: 65536 },
};

/** Resolves once `predicate()` (which may be async) is true, polling; rejects after `timeoutMs`. */
export async function waitFor(predicate, timeoutMs = 5000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The gateway's running streams (all transports). */
export async function activeStreams(gatewayUrl) {
  const health = await (await fetch(`${gatewayUrl}/healthz`)).json();
  return health.active_streams;
}

/** Lets pending microtasks and macrotasks run. */
export const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** Concatenated chunks from iterating a stream (throws what the iterator throws). */
export async function collect(stream) {
  let text = '';
  for await (const chunk of stream) text += chunk.content;
  return text;
}

/** The error a promise rejects with (fails when it resolves). */
export async function rejection(promise) {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    return error;
  }
}

// ---- a fake OpenAI upstream ---------------------------------------------------------------------

const chunk = (content, finish = null) =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-test',
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }],
  })}\n\n`;

/**
 * An OpenAI Chat Completions stand-in. The request's `model` picks the behaviour:
 * `stall` sends one chunk and then nothing; `ratelimit` answers 429 with `retry-after: 3`;
 * anything else streams "Hello, world!" with usage (completion_tokens 7).
 */
export async function startFakeOpenAI() {
  const open = new Set();
  const requests = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const payload = body ? JSON.parse(body) : {};
      requests.push({ path: req.url, headers: req.headers, payload });
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
        return;
      }
      if (payload.model === 'ratelimit') {
        res
          .writeHead(429, { 'content-type': 'application/json', 'retry-after': '3' })
          .end(JSON.stringify({ error: { message: 'Rate limit reached for requests', type: 'requests', code: 'rate_limit_exceeded' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      if (payload.model === 'stall') {
        open.add(res);
        res.on('close', () => open.delete(res));
        res.write(chunk('Hello'));
        return; // and nothing more: the gateway's idle timeout fires
      }
      res.write(chunk('Hello'));
      res.write(chunk(', world'));
      res.write(chunk('!'));
      res.write(chunk(null, 'stop'));
      res.write(`data: ${JSON.stringify({ id: 'chatcmpl-test', choices: [], usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    async close() {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

// ---- protocol messages, as the gateway sends them (for scripted sockets) -------------------------

export const wire = {
  ack: (id, key = undefined) => ({ type: 'start', id, seq: 0, provider: 'rulebased', model: 'script', ...(key ? { key } : {}) }),
  chunk: (id, seq, content, from_seq) => ({ type: 'chunk', id, seq, content, ...(from_seq === undefined ? {} : { from_seq }) }),
  reasoning: (id, seq, content, from_seq) => ({ type: 'reasoning', id, seq, content, ...(from_seq === undefined ? {} : { from_seq }) }),
  callStart: (id, seq, call_id, name, index = 0) => ({ type: 'tool_call_start', id, seq, call_id, name, index }),
  callDelta: (id, seq, call_id, arguments_delta, from_seq) => ({
    type: 'tool_call_delta', id, seq, call_id, arguments_delta, ...(from_seq === undefined ? {} : { from_seq }),
  }),
  callEnd: (id, seq, call_id, name, args, error) => ({
    type: 'tool_call_end', id, seq, call_id, name, arguments: error ? null : args, ...(error ? { arguments_error: error } : {}),
  }),
  done: (id, seq, content, fields = {}) => ({
    type: 'done', id, seq, finish_reason: 'stop', content,
    usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15, estimated: false },
    metrics: { provider: 'rulebased', model: 'script', ttft_ms: 1, duration_ms: 2, tokens_per_second: 3, estimated_cost_usd: 0 },
    ...fields,
  }),
};

/**
 * Numbers a step's events like the gateway: the ack (seq 0), then each part, then `done`.
 * `parts` are functions of (id, seq) from `wire`, e.g. `(id, seq) => wire.chunk(id, seq, 'hi')`.
 */
export function numbered(id, parts, doneContent, doneFields = {}) {
  const events = [wire.ack(id, `key-${id}`.padEnd(32, 'x').replace(/[^A-Za-z0-9_-]/g, '_'))];
  parts.forEach((part, i) => events.push(part(id, i + 1)));
  events.push(wire.done(id, parts.length + 1, doneContent, doneFields));
  return events;
}

/**
 * Makes a scripted socket answer each `start` it receives: `respond(start, n)` (n counts the
 * starts from 0) returns the events to send back, sent in a later task, as a gateway would.
 */
export function answerStarts(socket, respond) {
  const send = socket.send.bind(socket);
  let n = 0;
  socket.send = (data) => {
    send(data);
    const msg = JSON.parse(data);
    if (msg.type !== 'start') return;
    const events = respond(msg, n++);
    setTimeout(() => {
      for (const event of events) socket.serverSend(event);
    }, 0);
  };
}
