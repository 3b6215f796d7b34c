/**
 * TokenwireStream: one generation as the application sees it — chunks and typed parts as async
 * iterators and callbacks, the accumulated text and reasoning, the tool calls, a partial-object
 * view of JSON output, live stats, and a `result` promise settled by the terminal message.
 * Transports feed it through a private sink (see `createStream`), after routing by id.
 * @module
 */

import { TokenwireError, fromErrorMessage, protocolGap } from './errors.js';
import { Feed } from './feed.js';
import { PartialObjects } from './partial-json.js';
import { StatsTracker, now } from './stats.js';

/** @typedef {import('../index.js').StreamHandlers} StreamHandlers */
/** @typedef {import('../index.js').StreamStatus} StreamStatus */
/** @typedef {import('../index.js').StreamChunk} StreamChunk */
/** @typedef {import('../index.js').StreamStats} StreamStats */
/** @typedef {import('../index.js').Done} Done */
/** @typedef {import('../index.js').StartAck} StartAck */
/** @typedef {import('../index.js').Notice} Notice */
/** @typedef {import('../index.js').ServerMessage} ServerMessage */
/** @typedef {import('../index.js').PartMessage} PartMessage */
/** @typedef {import('../index.js').StreamPart} StreamPart */
/** @typedef {import('../index.js').ToolCallState} ToolCallState */

/**
 * What the client passes when it creates a stream.
 * @typedef {object} StreamInit
 * @property {string} id
 * @property {number} [startedAt] when `client.stream()` was called (default: now)
 * @property {StreamHandlers} [handlers]
 * @property {boolean} [json] the request asked for JSON output: keep a partial-object view
 * @property {(stream: TokenwireStream) => void} onCancel the application asked to cancel (once)
 * @property {(stream: TokenwireStream) => void} onAbandon the client gave up on a stream the gateway may still run (seq gap)
 * @property {(stream: TokenwireStream) => void} [onEnd] the stream ended, however
 */

/**
 * The transports' handle on a stream. Messages must already be routed to this stream.
 * @typedef {object} StreamSink
 * @property {(msg: ServerMessage) => void} message the ack, a notice, a chunk or other part, `done` or a terminal `error`
 * @property {(error: TokenwireError, deferCallbacks?: boolean) => void} fail a refusal or a local failure (connection lost, closed…); a stream being cancelled resolves as cancelled instead
 * @property {(deferCallbacks?: boolean) => void} cancelled end as cancelled with the text so far (nothing more will come from the gateway); `deferCallbacks` runs `onDone` in a microtask (used while `stream()` has not returned yet)
 * @property {(queued: boolean) => void} queued the client holds the stream back (true: it waits for the connection or for room on it) or sends it (false)
 * @property {(id: string) => void} rename change the id before anything was sent
 * @property {() => boolean} ended
 * @property {() => boolean} cancelRequested
 * @property {() => boolean} acked
 * @property {() => string | null} key the stream key from the ack (null before it, or from a gateway without keys)
 * @property {() => number} lastSeq the seq of the last event processed (-1 before the ack): a resume's `after_seq`
 * @property {() => void} resuming the transport is about to resume the stream: notices the gateway may replay are dropped
 */

const INTERNAL = Symbol('tokenwire.stream');
const noop = () => {};

/**
 * Reports an exception thrown by application code (a callback) without breaking the client.
 * @param {unknown} error
 */
function reportCallbackError(error) {
  queueMicrotask(() => {
    throw error;
  });
}

/**
 * A numbered message as the part the application sees (camelCase, like chunks).
 * @param {PartMessage} msg
 * @returns {StreamPart}
 */
function partOf(msg) {
  /** @type {StreamPart} */
  let part;
  switch (msg.type) {
    case 'chunk':
      part = { type: 'text', text: msg.content, seq: msg.seq };
      break;
    case 'reasoning':
      part = { type: 'reasoning', text: msg.content, seq: msg.seq };
      break;
    case 'tool_call_start':
      return { type: 'tool-call-start', callId: msg.call_id, name: msg.name, index: msg.index, seq: msg.seq };
    case 'tool_call_delta':
      part = { type: 'tool-call-delta', callId: msg.call_id, argumentsDelta: msg.arguments_delta, seq: msg.seq };
      break;
    case 'tool_call_end': {
      /** @type {StreamPart} */
      const end = { type: 'tool-call-end', callId: msg.call_id, name: msg.name, arguments: msg.arguments ?? null, seq: msg.seq };
      if (typeof msg.arguments_error === 'string') end.argumentsError = msg.arguments_error;
      return end;
    }
  }
  if (typeof msg.from_seq === 'number') part.fromSeq = msg.from_seq;
  return part;
}

/**
 * Calls a handler the application passed, in a microtask when `defer` (while `stream()` has not
 * returned yet); an exception it throws is reported, never passed on.
 * @param {Function | undefined} fn
 * @param {unknown[]} args
 * @param {boolean} defer
 */
export function callHandler(fn, args, defer) {
  if (!fn) return;
  const run = () => {
    try {
      fn(...args);
    } catch (error) {
      reportCallbackError(error);
    }
  };
  if (defer) queueMicrotask(run);
  else run();
}

export class TokenwireStream {
  #id;
  /** @type {string | null} */
  #provider = null;
  /** @type {string | null} */
  #model = null;
  #text = '';
  #reasoning = '';
  /** @type {Map<string, ToolCallState>} by call id, in the order the calls started */
  #calls = new Map();
  /** @type {StreamStatus} */
  #status = 'queued';
  #queued = true; // held back by the client: nothing sent yet
  /** @type {Feed<StreamChunk>} */
  #chunks = new Feed();
  /** @type {Feed<StreamPart>} */
  #parts = new Feed();
  /** @type {PartialObjects | null} */
  #objects;
  /** @type {Notice[]} */
  #notices = [];
  /** @type {TokenwireError | null} */
  #error = null;
  #ended = false;
  #acked = false;
  /** @type {string | null} */
  #key = null;
  #resumed = false; // resumed at least once: replayed notices are possible
  #cancelRequested = false;
  #deferCallbacks = false;
  #expected = 0; // the seq expected next
  /** @type {StatsTracker} */
  #stats;
  /** @type {StreamHandlers} */
  #handlers;
  /** @type {StreamInit} */
  #init;
  /** @type {Promise<Done>} */
  #result;
  /** @type {(done: Done) => void} */
  #resolve = noop;
  /** @type {(error: TokenwireError) => void} */
  #reject = noop;
  /** @type {(() => void) | null} */
  #unlisten = null;

  /**
   * Streams are made by `client.stream()`.
   * @param {symbol} key
   * @param {StreamInit} init
   * @param {(sink: StreamSink) => void} attach receives the sink transports use
   */
  constructor(key, init, attach) {
    if (key !== INTERNAL) throw new TypeError('a TokenwireStream is created by TokenwireClient.stream()');
    this.#id = init.id;
    this.#init = init;
    this.#handlers = init.handlers ?? {};
    this.#objects = init.json ? new PartialObjects() : null;
    this.#stats = new StatsTracker(init.startedAt ?? now());
    this.#result = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#result.catch(noop); // a caller that only iterates must not get an unhandled rejection
    attach({
      message: (msg) => this.#message(msg),
      fail: (error, deferCallbacks = false) => this.#deferring(deferCallbacks, () => this.#fail(error)),
      cancelled: (deferCallbacks = false) => this.#deferring(deferCallbacks, () => this.#endCancelled()),
      queued: (queued) => {
        this.#queued = queued;
      },
      rename: (id) => {
        this.#id = id;
      },
      ended: () => this.#ended,
      cancelRequested: () => this.#cancelRequested,
      acked: () => this.#acked,
      key: () => this.#key,
      lastSeq: () => this.#expected - 1,
      resuming: () => {
        this.#resumed = true;
      },
    });
    const signal = this.#handlers.signal;
    if (signal && !signal.aborted) {
      const onAbort = () => this.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#unlisten = () => signal.removeEventListener('abort', onAbort);
    }
  }

  /** The stream id (generated by the client unless the request named one). */
  get id() {
    return this.#id;
  }

  /**
   * The gateway's key for the stream, from its ack (null before it): resuming after a dropped
   * connection and cancelling from elsewhere (`DELETE /v1/streams/{key}`) take it. Keep it private.
   * @returns {string | null}
   */
  get key() {
    return this.#key;
  }

  /**
   * The provider serving the stream: from the gateway's ack (null before it), then from each
   * notice (after a failover: the fallback now serving) and from `done.metrics`.
   */
  get provider() {
    return this.#provider;
  }

  /** The model, as resolved by the gateway (null before the ack); like `provider`, updated on failover. */
  get model() {
    return this.#model;
  }

  /**
   * The gateway's `notice` messages for this stream, in order: retries and failovers before the
   * first token. A fresh array on every read.
   * @returns {Notice[]}
   */
  get notices() {
    return this.#notices.slice();
  }

  /** All text received so far (at `done`: the gateway's `content`). */
  get text() {
    return this.#text;
  }

  /** All reasoning text received so far (at `done`: the gateway's `reasoning`, when it sent one). */
  get reasoning() {
    return this.#reasoning;
  }

  /**
   * The tool calls so far, in the order they started: name, the arguments' JSON text as it
   * arrived, and once ended the parsed `arguments` (or `argumentsError`). Fresh copies on every read.
   * @returns {ToolCallState[]}
   */
  get toolCalls() {
    return [...this.#calls.values()].map((call) => ({ ...call }));
  }

  /**
   * For a `json` / `json_schema` stream: the newest snapshot of the JSON text so far, parsed
   * tolerantly (see `parsePartialJson`); at `done`, `done.object` when the gateway sent one.
   * Undefined before there is a value, and for other streams.
   * @returns {unknown}
   */
  get partialObject() {
    return this.#objects?.latest.value;
  }

  /** @returns {StreamStatus} */
  get status() {
    return this.#status;
  }

  /**
   * Whether the client holds the stream back, nothing sent yet: it waits for the connection, or
   * for one of the socket's `limits.max_streams` streams to end. False once sent, and once ended.
   */
  get queued() {
    return this.#queued;
  }

  /** The error that ended the stream, if it failed. */
  get error() {
    return this.#error;
  }

  /** @returns {StreamStats} a fresh snapshot, live while the stream runs */
  get stats() {
    return this.#stats.snapshot();
  }

  /**
   * The terminal `done` message (also for a cancelled stream); rejects with a TokenwireError.
   * @returns {Promise<Done>}
   */
  get result() {
    return this.#result;
  }

  /**
   * Asks the gateway to stop the stream. `result` then resolves with `finish_reason: "cancelled"`
   * and the text so far. A no-op once the stream has ended or was already cancelled.
   */
  cancel() {
    if (this.#ended || this.#cancelRequested) return;
    this.#cancelRequested = true;
    this.#init.onCancel(this);
  }

  /**
   * Chunks in order: `{content, seq, fromSeq?}`. Ends after `done`, throws the TokenwireError
   * when the stream fails. Every iterator starts from the first chunk; leaving a loop early does
   * not cancel the stream.
   * @returns {AsyncIterableIterator<StreamChunk>}
   */
  [Symbol.asyncIterator]() {
    return this.#chunks.iterate();
  }

  /**
   * Every part in order — text, reasoning, tool-call start/delta/end — as typed objects. Like
   * the chunk iterator: every iterator starts from the first part, ends after `done`, throws the
   * TokenwireError when the stream fails.
   * @returns {AsyncIterableIterator<StreamPart>}
   */
  parts() {
    return this.#parts.iterate();
  }

  /**
   * For a `json` / `json_schema` stream: the current snapshot (if any), then each newer one as
   * text arrives; a slow reader skips the snapshots it was too slow for. Ends after `done` (the
   * last one is `done.object` when the gateway sent one); empty for other streams.
   * @returns {AsyncIterableIterator<unknown>}
   */
  partialObjects() {
    if (this.#objects) return this.#objects.latest.iterate();
    const none = new Feed();
    none.end(this.#error);
    return none.iterate();
  }

  // ---- fed by the transports -------------------------------------------------------------------

  /** @param {ServerMessage} msg */
  #message(msg) {
    if (this.#ended) return;
    switch (msg.type) {
      case 'start':
        if (this.#acked || msg.seq !== 0) return this.#gap(0, msg.seq);
        this.#acked = true;
        this.#expected = 1;
        if (typeof msg.key === 'string' && msg.key) this.#key = msg.key;
        this.#provider = msg.provider;
        this.#model = msg.model;
        this.#status = 'streaming';
        this.#call('onStart', msg);
        return;
      case 'notice':
        // No seq: news of how the stream is served, never one of its numbered events.
        if (!this.#acked) return; // the gateway sends notices only after the ack
        if (this.#resumed && this.#notices.some((n) => sameNotice(n, msg))) return; // replayed by a resume
        if (typeof msg.provider === 'string' && msg.provider) this.#provider = msg.provider;
        if (typeof msg.model === 'string' && msg.model) this.#model = msg.model;
        this.#notices.push(msg);
        this.#call('onNotice', msg);
        return;
      case 'chunk':
      case 'reasoning':
      case 'tool_call_start':
      case 'tool_call_delta':
      case 'tool_call_end': {
        const first = /** @type {{from_seq?: number | null}} */ (msg).from_seq ?? msg.seq;
        if (first !== this.#expected || msg.seq < first) return this.#gap(this.#expected, first);
        this.#expected = msg.seq + 1;
        this.#part(partOf(msg));
        return;
      }
      case 'done':
        if (msg.seq !== this.#expected) return this.#gap(this.#expected, msg.seq);
        this.#finish(msg);
        return;
      case 'error':
        this.#end('error', fromErrorMessage(msg));
        return;
      default: // ready, pong, unknown types: not for a stream
    }
  }

  /** @param {StreamPart} part */
  #part(part) {
    this.#stats.part(part);
    if (part.type === 'text') {
      /** @type {StreamChunk} */
      const chunk = { content: part.text, seq: part.seq };
      if (part.fromSeq !== undefined) chunk.fromSeq = part.fromSeq;
      this.#text += part.text;
      this.#chunks.push(chunk);
      this.#call('onChunk', chunk);
    } else if (part.type === 'reasoning') {
      this.#reasoning += part.text;
      this.#call('onReasoning', part);
    } else {
      this.#toolCall(part);
      this.#call('onToolCall', part);
    }
    this.#parts.push(part);
    this.#call('onPart', part);
    if (part.type === 'text' && this.#objects?.update(this.#text)) this.#call('onPartialObject', this.#objects.latest.value);
  }

  /** @param {StreamPart & {type: 'tool-call-start' | 'tool-call-delta' | 'tool-call-end'}} part */
  #toolCall(part) {
    if (part.type === 'tool-call-start') {
      this.#calls.set(part.callId, { callId: part.callId, name: part.name, index: part.index, argumentsText: '', ended: false });
      return;
    }
    const call = this.#calls.get(part.callId);
    if (part.type === 'tool-call-delta') {
      if (call) call.argumentsText += part.argumentsDelta;
    } else if (call) {
      call.ended = true;
      call.arguments = part.arguments;
      if (part.argumentsError !== undefined) call.argumentsError = part.argumentsError;
    }
  }

  /**
   * @param {number} expected
   * @param {number} got
   */
  #gap(expected, got) {
    if (this.#cancelRequested) this.#endCancelled();
    else this.#end('error', protocolGap(this.#id, expected, got));
    this.#init.onAbandon(this);
  }

  /**
   * @param {boolean} defer
   * @param {() => void} fn
   */
  #deferring(defer, fn) {
    this.#deferCallbacks = defer;
    try {
      fn();
    } finally {
      this.#deferCallbacks = false;
    }
  }

  /** @param {TokenwireError} error */
  #fail(error) {
    if (this.#ended) return;
    if (this.#cancelRequested) this.#endCancelled();
    else this.#end('error', error);
  }

  #endCancelled() {
    if (this.#ended) return;
    this.#finish({
      type: 'done',
      id: this.#id,
      seq: this.#expected,
      finish_reason: 'cancelled',
      content: this.#text,
      usage: null,
      metrics: null,
    });
  }

  /** @param {Done} done */
  #finish(done) {
    if (typeof done.content === 'string') this.#text = done.content;
    if (typeof done.reasoning === 'string') this.#reasoning = done.reasoning;
    if (this.#objects && 'object' in done && this.#objects.set(done.object)) this.#call('onPartialObject', done.object);
    // The gateway's metrics name the provider that served the stream in the end.
    if (typeof done.metrics?.provider === 'string' && done.metrics.provider) this.#provider = done.metrics.provider;
    if (typeof done.metrics?.model === 'string' && done.metrics.model) this.#model = done.metrics.model;
    this.#stats.end(done.usage);
    this.#end(done.finish_reason === 'cancelled' ? 'cancelled' : 'done', null, done);
  }

  /**
   * @param {StreamStatus} status
   * @param {TokenwireError | null} error
   * @param {Done} [done]
   */
  #end(status, error, done) {
    if (this.#ended) return;
    this.#ended = true;
    this.#queued = false;
    this.#status = status;
    this.#stats.end(null);
    this.#unlisten?.();
    this.#unlisten = null;
    if (error) {
      this.#error = error;
      this.#reject(error);
      this.#call('onError', error);
    } else if (done) {
      this.#resolve(done);
      this.#call('onDone', done);
    }
    this.#chunks.end(error);
    this.#parts.end(error);
    this.#objects?.latest.end(error);
    this.#init.onEnd?.(this);
  }

  /**
   * @template {Exclude<keyof StreamHandlers, 'signal'>} K
   * @param {K} name
   * @param {Parameters<NonNullable<StreamHandlers[K]>>[0]} value
   */
  #call(name, value) {
    callHandler(/** @type {Function | undefined} */ (this.#handlers[name]), [value, this], this.#deferCallbacks);
  }
}

/**
 * Whether two notices are the same one (a resume may replay the notices of the stream; `attempt`
 * grows with every try, so it tells them apart).
 * @param {Notice} a
 * @param {Notice} b
 */
function sameNotice(a, b) {
  return a.attempt === b.attempt && a.code === b.code && a.provider === b.provider && a.model === b.model;
}

/**
 * Creates a stream and the sink its transport feeds.
 * @param {StreamInit} init
 * @returns {{stream: TokenwireStream, sink: StreamSink}}
 */
export function createStream(init) {
  /** @type {StreamSink | undefined} */
  let sink;
  const stream = new TokenwireStream(INTERNAL, init, (s) => {
    sink = s;
  });
  return { stream, sink: /** @type {StreamSink} */ (sink) };
}

/**
 * A stream that ends at once as cancelled (the signal was already aborted): nothing is sent.
 * @param {StreamInit} init
 */
export function createCancelledStream(init) {
  const { stream, sink } = createStream(init);
  sink.cancelled(true);
  return stream;
}
