/**
 * TokenwireClient: one gateway, many streams. Owns the connection state (lazy connect, queueing
 * until `ready` and while the socket runs `limits.max_streams` streams, reconnect with backoff,
 * resuming the streams of a lost socket, the SSE fallback) and hands each stream to a transport.
 * @module
 */

import { backoffDelay, reconnectPolicy } from './backoff.js';
import { badMessage, clientClosed, connectionLost, TokenwireError, unauthorized } from './errors.js';
import { SseTransport } from './sse-transport.js';
import { now } from './stats.js';
import { createCancelledStream, createStream, TokenwireStream } from './stream.js';
import { createToolLoop, ToolLoopStream } from './tool-loop.js';
import { WsConnection } from './ws-transport.js';

/** @typedef {import('../index.js').ClientOptions} ClientOptions */
/** @typedef {import('../index.js').ClientState} ClientState */
/** @typedef {import('../index.js').ClientEvents} ClientEvents */
/** @typedef {import('../index.js').Ready} Ready */
/** @typedef {import('../index.js').ProviderInfo} ProviderInfo */
/** @typedef {import('../index.js').StreamRequest} StreamRequest */
/** @typedef {import('../index.js').StreamHandlers} StreamHandlers */
/** @typedef {import('../index.js').ToolLoopRequest} ToolLoopRequest */
/** @typedef {import('../index.js').ToolLoopHandlers} ToolLoopHandlers */
/** @typedef {import('../index.js').TransportName} TransportName */
/** @typedef {import('../index.js').WebSocketConstructor} WebSocketConstructor */
/** @typedef {import('../index.js').FetchLike} FetchLike */
/** @typedef {import('./stream.js').StreamSink} StreamSink */
/** @typedef {import('./ws-transport.js').CloseInfo} CloseInfo */

/**
 * A stream the client is responsible for until a transport has it.
 * @typedef {object} Entry
 * @property {TokenwireStream} stream
 * @property {StreamSink} sink
 * @property {StreamRequest} request
 * @property {boolean} generatedId
 * @property {WsConnection | null} conn the connection it was sent (or resumed) on
 * @property {boolean} viaSse
 * @property {string} [lost] why its last connection ended, while it waits to be resumed
 * @property {boolean} [requeued] refused once with `too_many_streams` and queued again
 */

export const STREAM_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
const AUTH_CLOSE_CODE = 1008;

/**
 * The two endpoints of a gateway base URL.
 * @param {string | URL} url `http(s)://host:port`, `ws(s)://host:port`, optionally ending in `/v1/ws`
 * @param {string | undefined} token
 * @returns {{httpBase: string, wsUrl: string}}
 */
export function gatewayEndpoints(url, token) {
  const base = typeof globalThis.location?.href === 'string' ? globalThis.location.href : undefined;
  const parsed = new URL(String(url), base);
  const secure = parsed.protocol === 'https:' || parsed.protocol === 'wss:';
  if (!secure && parsed.protocol !== 'http:' && parsed.protocol !== 'ws:') {
    throw new TypeError(`unsupported gateway URL ${parsed.href}: use http(s):// or ws(s)://`);
  }
  let path = parsed.pathname.replace(/\/+$/, '');
  if (path.endsWith('/v1/ws')) path = path.slice(0, -'/v1/ws'.length);
  const httpBase = `${secure ? 'https' : 'http'}://${parsed.host}${path}`;
  const query = token ? `?token=${encodeURIComponent(token)}` : '';
  const wsUrl = `${secure ? 'wss' : 'ws'}://${parsed.host}${path}/v1/ws${query}`;
  return { httpBase, wsUrl };
}

/** A short random tag that makes generated SSE ids unique among a gateway's HTTP streams. */
function randomTag() {
  const bytes = new Uint8Array(5);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * @template T
 * @typedef {object} Deferred
 * @property {Promise<T>} promise
 * @property {(value: T) => void} resolve
 * @property {(error: unknown) => void} reject
 * @property {boolean} settled
 */

/**
 * @template T
 * @returns {Deferred<T>}
 */
function deferred() {
  /** @type {Deferred<T>} */
  const d = /** @type {any} */ ({ settled: false });
  d.promise = new Promise((resolve, reject) => {
    d.resolve = (value) => {
      d.settled = true;
      resolve(value);
    };
    d.reject = (error) => {
      d.settled = true;
      reject(error);
    };
  });
  d.promise.catch(() => {}); // nobody has to await `ready`
  return d;
}

export class TokenwireClient {
  #httpBase;
  #wsUrl;
  #token;
  /** @type {'auto' | 'websocket' | 'sse'} */
  #mode;
  /** @type {TransportName | null} the transport in use, once known */
  #transport = null;
  /** @type {WebSocketConstructor | undefined} */
  #WebSocket;
  /** @type {FetchLike} */
  #fetch;
  #policy;
  /** @type {ClientState} */
  #state = 'idle';
  /** @type {WsConnection | null} */
  #conn = null;
  #everOpened = false;
  /** @type {SseTransport | null} */
  #sse = null;
  /** @type {Entry[]} streams waiting for the connection, or for room on it; oldest first */
  #queue = [];
  /** @type {Entry[]} acked streams of a lost connection, waiting to be resumed on the next one */
  #resuming = [];
  /** @type {Map<keyof ClientEvents, Set<Function>>} */
  #listeners = new Map();
  /** @type {Deferred<Ready>} */
  #ready = deferred();
  /** @type {ProviderInfo[]} */
  #providers = [];
  #reconnects = 0;
  #attempt = 0; // consecutive failed connection attempts
  /** @type {ReturnType<typeof setTimeout> | null} */
  #timer = null;
  #counter = 0;
  #tag = randomTag();

  /**
   * @param {string | URL} url the gateway: `http(s)://host:port` or `ws(s)://host:port` (`/v1/ws` optional)
   * @param {ClientOptions} [options]
   */
  constructor(url, options = {}) {
    this.#token = options.token || undefined;
    ({ httpBase: this.#httpBase, wsUrl: this.#wsUrl } = gatewayEndpoints(url, this.#token));
    const mode = options.transport ?? 'auto';
    if (mode !== 'auto' && mode !== 'websocket' && mode !== 'sse') {
      throw new TypeError(`transport must be 'auto', 'websocket' or 'sse', not ${JSON.stringify(mode)}`);
    }
    this.#mode = mode;
    this.#policy = reconnectPolicy(options.reconnect);
    this.#WebSocket = options.WebSocket ?? /** @type {WebSocketConstructor | undefined} */ (globalThis.WebSocket);
    const fetchImpl = options.fetch;
    this.#fetch = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
    if (mode === 'sse' || (mode === 'auto' && !this.#WebSocket)) this.#transport = 'sse';
    if (mode === 'websocket') {
      if (!this.#WebSocket) {
        throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. from the `ws` package)');
      }
      this.#transport = 'websocket';
    }
    if (this.#transport === 'sse' && !fetchImpl && typeof globalThis.fetch !== 'function') {
      throw new TypeError('no fetch implementation: pass options.fetch');
    }
  }

  /** @returns {ClientState} */
  get state() {
    return this.#state;
  }

  /** The `ready` message of the current connection (a new promise after each reconnect). */
  get ready() {
    return this.#ready.promise;
  }

  /** The providers listed in the last `ready` (empty before it, and over SSE). */
  get providers() {
    return this.#providers;
  }

  /** How many reconnect attempts were scheduled (one per `'reconnect'` event). */
  get reconnects() {
    return this.#reconnects;
  }

  /** The transport in use: `'websocket'`, `'sse'`, or null while `'auto'` has not decided. */
  get transport() {
    return this.#transport;
  }

  /**
   * @template {keyof ClientEvents} E
   * @param {E} event
   * @param {ClientEvents[E]} listener
   * @returns {() => void} removes the listener
   */
  on(event, listener) {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /**
   * @template {keyof ClientEvents} E
   * @param {E} event
   * @param {ClientEvents[E]} listener
   */
  off(event, listener) {
    this.#listeners.get(event)?.delete(listener);
  }

  /**
   * Opens the connection now instead of on the first stream.
   * @returns {Promise<Ready>}
   */
  connect() {
    if (this.#state === 'idle') this.#begin();
    return this.#ready.promise;
  }

  /**
   * Starts a tool loop: `tools` as a record of tools the page runs (`execute`), steps until one
   * ends without calls or `maxSteps` steps ran.
   * @overload
   * @param {ToolLoopRequest} request
   * @param {ToolLoopHandlers} [handlers]
   * @returns {ToolLoopStream}
   */
  /**
   * Starts a stream. Nothing is sent when `handlers.signal` is already aborted: the stream ends
   * at once as cancelled.
   * @overload
   * @param {StreamRequest} request
   * @param {StreamHandlers} [handlers]
   * @returns {TokenwireStream}
   */
  /**
   * @param {StreamRequest | ToolLoopRequest} request
   * @param {StreamHandlers | ToolLoopHandlers} [handlers]
   * @returns {TokenwireStream | ToolLoopStream}
   */
  stream(request, handlers = {}) {
    const startedAt = now();
    if (!request || typeof request !== 'object') throw new TypeError('stream(request): request must be an object');
    const { tools } = request;
    if (tools && typeof tools === 'object' && !Array.isArray(tools)) {
      return createToolLoop({
        request: /** @type {ToolLoopRequest} */ (request),
        handlers: /** @type {ToolLoopHandlers} */ (handlers),
        startedAt,
        start: (step, stepHandlers) => /** @type {TokenwireStream} */ (this.stream(step, stepHandlers)),
      });
    }
    const generatedId = request.id === undefined || request.id === null;
    const id = generatedId ? this.#nextId() : String(request.id);
    /** @type {Entry} */
    const entry = /** @type {any} */ ({ request, generatedId, conn: null, viaSse: false });
    const format = request.response_format?.type;
    const init = {
      id,
      startedAt,
      handlers: /** @type {StreamHandlers} */ (handlers),
      json: format === 'json' || format === 'json_schema',
      onCancel: () => this.#cancel(entry),
      onAbandon: () => this.#abandon(entry),
    };
    if (handlers.signal?.aborted) return createCancelledStream(init);
    const { stream, sink } = createStream(init);
    entry.stream = stream;
    entry.sink = sink;
    if (this.#state === 'closed') {
      sink.fail(clientClosed(id), true);
    } else if (!STREAM_ID_PATTERN.test(id)) {
      sink.fail(badMessage(null, `stream id must match ${STREAM_ID_PATTERN.source}: ${JSON.stringify(id)}`), true);
    } else {
      this.#queue.push(entry);
      if (this.#state === 'idle') this.#begin();
      else this.#pump();
    }
    return stream;
  }

  /**
   * Ends everything: the socket is closed, reconnecting stops, and streams that have not ended
   * fail with code `closed` (retryable: false). The client cannot be used again.
   */
  close() {
    if (this.#state === 'closed') return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const conn = this.#conn;
    this.#conn = null;
    this.#setState('closed');
    // A closed socket no longer cancels its streams (the gateway keeps them for a resume): cancel
    // them first, and those waiting to be resumed by key over HTTP.
    conn?.cancelStreams();
    conn?.close(1000, 'client closed');
    conn?.failStreams(clientClosed);
    const resuming = this.#resuming;
    this.#resuming = [];
    for (const { stream, sink } of resuming) {
      const key = sink.key();
      if (key) this.#deleteByKey(key);
      sink.fail(clientClosed(stream.id));
    }
    this.#failQueue(clientClosed);
    this.#sse?.closeAll(clientClosed);
    this.#failReady(clientClosed(null));
  }

  // ---- connection ------------------------------------------------------------------------------

  #begin() {
    if (this.#ready.settled) this.#ready = deferred();
    if (this.#transport === 'sse') {
      this.#useSse();
      return;
    }
    this.#setState('connecting');
    this.#openSocket();
  }

  #openSocket() {
    const WebSocketImpl = /** @type {WebSocketConstructor} */ (this.#WebSocket);
    const conn = new WsConnection(this.#wsUrl, WebSocketImpl, {
      onOpen: () => {
        this.#everOpened = true;
        this.#transport = 'websocket';
      },
      onReady: (ready) => this.#onReady(conn, ready),
      onClose: (info) => this.#onClose(conn, info),
      onStray: (error) => this.#emit('error', error),
      onResumeRefused: (routed, error) => this.#resumeRefused(/** @type {Entry} */ (routed), error),
      onTooManyStreams: (routed, error) => this.#tooManyStreams(/** @type {Entry} */ (routed), error),
      onRoom: () => this.#pump(),
    });
    this.#conn = conn;
  }

  /**
   * @param {WsConnection} conn
   * @param {Ready} ready
   */
  #onReady(conn, ready) {
    if (conn !== this.#conn) return;
    this.#attempt = 0;
    this.#providers = Array.isArray(ready.providers) ? ready.providers : [];
    this.#setState('open');
    this.#resumeStreams(conn);
    this.#pump();
    this.#ready.resolve(ready);
    this.#emit('ready', ready);
  }

  /**
   * Resumes the streams of the lost connection on this one, each from the last event it has (a
   * stream cancelled meanwhile is cancelled by key right after its resume, which then brings
   * the gateway's cancelled `done`).
   * @param {WsConnection} conn
   */
  #resumeStreams(conn) {
    const resuming = this.#resuming;
    this.#resuming = [];
    let sent = 0;
    for (const entry of resuming) {
      const { sink } = entry;
      const key = sink.key();
      if (sink.ended() || !key) continue;
      entry.conn = conn;
      sink.resuming();
      conn.resume(entry, key, sink.lastSeq());
      if (sink.cancelRequested()) conn.cancelKey(key);
      sent += 1;
    }
    if (sent) conn.endResumes();
  }

  /**
   * The gateway cannot resume a stream (`stream_expired`: it no longer knows the key, e.g. it
   * restarted, or the stream is past its retention): the stream fails with `connection_lost`,
   * the refusal as its `cause`.
   * @param {Entry} entry
   * @param {TokenwireError} refusal
   */
  #resumeRefused(entry, refusal) {
    const { stream, sink } = entry;
    const detail = `${entry.lost ?? 'the connection to the gateway was lost'}; the stream could not be resumed (${refusal.code}: ${refusal.message})`;
    sink.fail(connectionLost(stream.id, detail, refusal));
  }

  /**
   * @param {WsConnection} conn
   * @param {CloseInfo} info
   */
  #onClose(conn, info) {
    if (conn !== this.#conn) return;
    this.#conn = null;
    if (!info.opened && this.#mode === 'auto' && !this.#everOpened) {
      // No WebSocket has ever opened. If the gateway answers over HTTP, WebSockets are what is
      // blocked (a proxy): use SSE from now on. If not, the gateway is down: keep retrying.
      this.#httpReachable().then((reachable) => {
        if (this.#conn !== null || this.#state === 'closed') return;
        if (reachable) {
          this.#transport = 'sse';
          this.#useSse();
        } else {
          this.#afterClose(conn, info);
        }
      });
      return;
    }
    this.#afterClose(conn, info);
  }

  /** @returns {Promise<boolean>} */
  async #httpReachable() {
    try {
      const response = await this.#fetch(`${this.#httpBase}/healthz`);
      return response.ok;
    } catch {
      return false;
    }
  }

  /**
   * @param {WsConnection} conn
   * @param {CloseInfo} info
   */
  #afterClose(conn, info) {
    // The gateway refuses a token or origin with 1008 right after accepting, before `ready`. A
    // 1008 after `ready` is another policy close (a client that stopped reading): a lost
    // connection like any other. So are 1001 (the gateway shuts down; it has sent the terminal
    // events of its streams before) and 1013 (too many connections).
    if (info.code === AUTH_CLOSE_CODE && !info.ready) {
      const reason = info.reason || 'a valid API token is required';
      conn.failStreams((id) => unauthorized(id, reason));
      this.#failResuming((id) => unauthorized(id, reason));
      this.#failQueue((id) => unauthorized(id, reason));
      const error = unauthorized(null, reason);
      this.#failReady(error);
      this.#setState('idle');
      this.#emit('error', error);
      return;
    }
    const detail = info.opened
      ? `the connection to the gateway closed (code ${info.code}${info.reason ? `: ${info.reason}` : ''})`
      : 'could not connect to the gateway';
    const policy = this.#policy;
    const retrying = policy !== null && this.#attempt < policy.maxAttempts;
    // Acked streams wait for the next connection, to be resumed by key; a stream never acked has
    // no key (the gateway may have started it: it cancels it when nobody resumes it in time).
    const { acked, unacked } = conn.takeStreams();
    for (const routed of unacked) routed.sink.fail(connectionLost(routed.stream.id, detail));
    for (const routed of acked) {
      const entry = /** @type {Entry} */ (routed);
      if (retrying && routed.sink.key()) {
        entry.conn = null;
        entry.lost = detail;
        this.#resuming.push(entry);
      } else {
        routed.sink.fail(connectionLost(routed.stream.id, detail));
      }
    }
    if (retrying) {
      if (this.#ready.settled) this.#ready = deferred();
      this.#scheduleReconnect(/** @type {import('./backoff.js').ReconnectPolicy} */ (policy));
    } else {
      this.#failResuming((id) => connectionLost(id, `${detail}; reconnecting gave up, so the stream could not be resumed`));
      this.#failQueue((id) => connectionLost(id, detail));
      this.#failReady(connectionLost(null, detail));
      this.#setState('idle');
    }
  }

  /** @param {import('./backoff.js').ReconnectPolicy} policy */
  #scheduleReconnect(policy) {
    this.#attempt += 1;
    this.#reconnects += 1;
    const delay = backoffDelay(this.#attempt, policy);
    this.#setState('reconnecting');
    this.#emit('reconnect', this.#attempt, delay);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#state === 'reconnecting') this.#openSocket();
    }, delay);
  }

  #useSse() {
    this.#sse ??= new SseTransport(this.#httpBase, this.#token, this.#fetch, this.#policy);
    /** @type {Ready} */
    const ready = {
      type: 'ready',
      protocol: 1,
      server: { name: 'tokenwire', version: 'unknown' },
      providers: [],
      limits: { max_streams: Infinity, max_message_bytes: Infinity },
      synthetic: true,
    };
    this.#setState('open');
    this.#pump();
    this.#ready.resolve(ready);
    this.#emit('ready', ready);
  }

  // ---- streams ---------------------------------------------------------------------------------

  #nextId() {
    this.#counter += 1;
    return this.#transport === 'sse' ? `s${this.#counter}-${this.#tag}` : `s${this.#counter}`;
  }

  /** @param {Entry} entry */
  #dispatch(entry) {
    const { stream, sink, request } = entry;
    if (sink.ended()) return;
    sink.queued(false);
    if (this.#transport === 'sse') {
      // HTTP stream ids are shared by all of the gateway's HTTP clients: make generated ones unique.
      if (entry.generatedId && !stream.id.endsWith(this.#tag)) sink.rename(`${stream.id}-${this.#tag}`);
      entry.viaSse = true;
      const { type: _type, ...fields } = /** @type {StreamRequest & {type?: unknown}} */ (request);
      /** @type {SseTransport} */ (this.#sse).start(entry, { ...fields, id: stream.id });
      return;
    }
    const conn = /** @type {WsConnection} */ (this.#conn);
    entry.conn = conn;
    conn.start(entry, { ...request, id: stream.id });
  }

  /** @param {Entry} entry */
  #cancel(entry) {
    const queued = this.#queue.indexOf(entry);
    if (queued >= 0) {
      this.#queue.splice(queued, 1);
      entry.sink.cancelled();
    } else if (this.#resuming.includes(entry)) {
      // disconnected: `#resumeStreams` sends `cancel` by key once the next connection is ready
    } else if (entry.viaSse) {
      this.#sse?.cancel(entry.stream);
    } else {
      entry.conn?.cancel(entry);
    }
  }

  /** @param {Entry} entry */
  #abandon(entry) {
    if (entry.viaSse) this.#sse?.abandon(entry.stream);
    else entry.conn?.abandon(entry);
  }

  /** Sends queued streams, oldest first, while the socket has room for them (SSE: no limit). */
  #pump() {
    if (this.#state !== 'open') return;
    const conn = this.#conn; // null over SSE
    while (this.#queue.length > 0 && (conn === null || conn.room > 0)) {
      this.#dispatch(/** @type {Entry} */ (this.#queue.shift()));
    }
  }

  /**
   * The gateway refused a start with `too_many_streams` although the client kept to
   * `limits.max_streams` (the gateway runs fewer here than it announced; the connection now holds
   * back to what runs). The stream is queued again, ahead of those never sent, and starts when
   * one ends; refused a second time (or being cancelled), it fails with the refusal.
   * @param {Entry} entry
   * @param {TokenwireError} error
   */
  #tooManyStreams(entry, error) {
    if (entry.requeued || entry.sink.cancelRequested()) {
      entry.sink.fail(error);
      return;
    }
    entry.requeued = true;
    entry.sink.queued(true);
    const neverSent = this.#queue.findIndex((queued) => !queued.requeued);
    this.#queue.splice(neverSent < 0 ? this.#queue.length : neverSent, 0, entry);
  }

  /** @param {(id: string) => TokenwireError} makeError */
  #failResuming(makeError) {
    const resuming = this.#resuming;
    this.#resuming = [];
    for (const { stream, sink } of resuming) sink.fail(makeError(stream.id));
  }

  /**
   * Cancels a stream by key over HTTP, best effort (`close()` while it waits to be resumed).
   * @param {string} key
   */
  #deleteByKey(key) {
    /** @type {Record<string, string>} */
    const headers = {};
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    try {
      this.#fetch(`${this.#httpBase}/v1/streams/${encodeURIComponent(key)}`, { method: 'DELETE', headers })
        .then((response) => response.body?.cancel().catch(() => {}))
        .catch(() => {});
    } catch {
      // no fetch here: the gateway cancels the stream when nobody resumes it in time
    }
  }

  /** @param {(id: string) => TokenwireError} makeError */
  #failQueue(makeError) {
    const queue = this.#queue;
    this.#queue = [];
    for (const { stream, sink } of queue) sink.fail(makeError(stream.id));
  }

  /** @param {TokenwireError} error */
  #failReady(error) {
    if (this.#ready.settled) this.#ready = deferred();
    this.#ready.reject(error);
  }

  // ---- events ----------------------------------------------------------------------------------

  /** @param {ClientState} state */
  #setState(state) {
    if (state === this.#state) return;
    this.#state = state;
    this.#emit('state', state);
  }

  /**
   * @template {keyof ClientEvents} E
   * @param {E} event
   * @param {Parameters<ClientEvents[E]>} args
   */
  #emit(event, ...args) {
    const listeners = this.#listeners.get(event);
    if (!listeners) return;
    for (const listener of [...listeners]) {
      try {
        listener(...args);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
