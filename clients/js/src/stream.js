/**
 * TokenwireStream: one generation as the application sees it — chunks as an async iterator and
 * callbacks, the accumulated text, live stats, and a `result` promise settled by the terminal
 * message. Transports feed it through a private sink (see `createStream`), after routing by id.
 * @module
 */

import { TokenwireError, fromErrorMessage, protocolGap } from './errors.js';
import { StatsTracker, now } from './stats.js';

/** @typedef {import('../index.js').StreamHandlers} StreamHandlers */
/** @typedef {import('../index.js').StreamStatus} StreamStatus */
/** @typedef {import('../index.js').StreamChunk} StreamChunk */
/** @typedef {import('../index.js').StreamStats} StreamStats */
/** @typedef {import('../index.js').Done} Done */
/** @typedef {import('../index.js').StartAck} StartAck */
/** @typedef {import('../index.js').Notice} Notice */
/** @typedef {import('../index.js').ServerMessage} ServerMessage */

/**
 * What the client passes when it creates a stream.
 * @typedef {object} StreamInit
 * @property {string} id
 * @property {number} [startedAt] when `client.stream()` was called (default: now)
 * @property {StreamHandlers} [handlers]
 * @property {(stream: TokenwireStream) => void} onCancel the application asked to cancel (once)
 * @property {(stream: TokenwireStream) => void} onAbandon the client gave up on a stream the gateway may still run (seq gap)
 * @property {(stream: TokenwireStream) => void} [onEnd] the stream ended, however
 */

/**
 * The transports' handle on a stream. Messages must already be routed to this stream.
 * @typedef {object} StreamSink
 * @property {(msg: ServerMessage) => void} message the ack, a notice, a chunk, `done` or a terminal `error`
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

export class TokenwireStream {
  #id;
  /** @type {string | null} */
  #provider = null;
  /** @type {string | null} */
  #model = null;
  #text = '';
  /** @type {StreamStatus} */
  #status = 'queued';
  #queued = true; // held back by the client: nothing sent yet
  /** @type {StreamChunk[]} */
  #chunks = [];
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
  /** @type {Array<() => void>} */
  #waiters = [];
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
    let index = 0;
    let closed = false; // by return(), or after the error was thrown once
    /** @type {AsyncIterableIterator<StreamChunk>} */
    const iterator = {
      next: async () => {
        for (;;) {
          if (closed) return { value: undefined, done: true };
          if (index < this.#chunks.length) return { value: this.#chunks[index++], done: false };
          if (this.#error) {
            closed = true;
            throw this.#error;
          }
          if (this.#ended) return { value: undefined, done: true };
          await new Promise((wake) => this.#waiters.push(() => wake(undefined)));
        }
      },
      return: async () => {
        closed = true;
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
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
      case 'chunk': {
        const first = msg.from_seq ?? msg.seq;
        if (first !== this.#expected || msg.seq < first) return this.#gap(this.#expected, first);
        this.#expected = msg.seq + 1;
        /** @type {StreamChunk} */
        const chunk = { content: msg.content, seq: msg.seq };
        if (msg.from_seq !== undefined && msg.from_seq !== null) chunk.fromSeq = msg.from_seq;
        this.#text += msg.content;
        this.#chunks.push(chunk);
        this.#stats.chunk(msg.content);
        this.#call('onChunk', chunk);
        this.#wake();
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
    this.#wake();
    this.#init.onEnd?.(this);
  }

  #wake() {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * @template {'onStart' | 'onNotice' | 'onChunk' | 'onDone' | 'onError'} K
   * @param {K} name
   * @param {Parameters<NonNullable<StreamHandlers[K]>>[0]} value
   */
  #call(name, value) {
    const fn = /** @type {((value: unknown, stream: TokenwireStream) => void) | undefined} */ (
      this.#handlers[name]
    );
    if (!fn) return;
    const run = () => {
      try {
        fn(value, this);
      } catch (error) {
        reportCallbackError(error);
      }
    };
    if (this.#deferCallbacks) queueMicrotask(run);
    else run();
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
