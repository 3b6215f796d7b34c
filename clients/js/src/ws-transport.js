/**
 * One WebSocket connection to `GET /v1/ws`: sends `start`/`cancel`/`resume`, decodes server
 * frames and routes them to streams by id. The client makes a new one for every (re)connection,
 * so routing state never outlives its socket.
 *
 * Routing: the gateway answers the `start`s of one id in order, each with an ack (`seq` 0) or a
 * refusal (an `error` without `seq`), so the streams waiting for an answer are kept per id in a
 * FIFO; an acked stream is "active" until its terminal message (`done`, or `error` with `seq`).
 *
 * Resuming: a `resume` has no ack (its next event is the reply), so a resumed stream is active at
 * once. Its resumes are sent first on a new connection, then a `ping` as a barrier: an `error`
 * without `seq` for a resumed id before that `pong` (or before the stream's first event) is the
 * refusal of the resume, and an `unknown_stream` without id the reply to a `cancel` by key.
 *
 * Room: the gateway runs at most `limits.max_streams` streams per connection, each from its
 * `start` (or `resume`) until its terminal message has been sent. Here the streams waiting for an
 * answer and the active ones count until their answer or terminal message arrives (never fewer
 * than the gateway counts); `room` is what is left, and the client holds back the rest.
 * @module
 */

import { badMessage, fromErrorMessage, TokenwireError } from './errors.js';

/** @typedef {import('./stream.js').TokenwireStream} TokenwireStream */
/** @typedef {import('./stream.js').StreamSink} StreamSink */
/** @typedef {import('../index.js').Ready} Ready */
/** @typedef {import('../index.js').ServerMessage} ServerMessage */
/** @typedef {import('../index.js').StreamRequest} StreamRequest */
/** @typedef {import('../index.js').WebSocketConstructor} WebSocketConstructor */

/**
 * The part of the WebSocket API used here (browsers' WebSocket, Node 22's, and the `ws` package).
 * @typedef {object} SocketLike
 * @property {number} readyState
 * @property {string} [binaryType]
 * @property {(data: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {((event: unknown) => void) | null} onopen
 * @property {((event: {data: unknown}) => void) | null} onmessage
 * @property {((event: {code?: number, reason?: string}) => void) | null} onclose
 * @property {((event: unknown) => void) | null} onerror
 */

/**
 * A stream as the connection knows it.
 * @typedef {object} Routed
 * @property {TokenwireStream} stream
 * @property {StreamSink} sink
 */

/**
 * @typedef {object} CloseInfo
 * @property {number} code the close code (1006 when the socket failed without a close frame)
 * @property {string} reason
 * @property {boolean} opened whether the socket ever opened
 * @property {boolean} ready whether the gateway's `ready` arrived
 */

/**
 * @typedef {object} ConnectionEvents
 * @property {() => void} onOpen
 * @property {(ready: Ready) => void} onReady
 * @property {(info: CloseInfo) => void} onClose
 * @property {(error: TokenwireError) => void} onStray a connection-level error, or one for no known stream
 * @property {(routed: Routed, error: TokenwireError) => void} onResumeRefused the gateway refused to resume a stream (it is no longer routed here)
 * @property {(routed: Routed, error: TokenwireError) => void} onTooManyStreams the gateway refused a start with `too_many_streams` (it is no longer routed here)
 * @property {() => void} onRoom a stream sent here ended or was refused: another may fit now
 */

const OPEN = 1;
/** A socket that has not opened by then counts as one that cannot open (e.g. a proxy that hangs on Upgrade). */
export const OPEN_TIMEOUT_MS = 10_000;
const CANCELLED_IDS_KEPT = 1024;
const BARRIER_TS = 'tokenwire:resumed';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The text of a message event's data (text frames are strings; binary frames are JSON too).
 * @param {unknown} data
 * @returns {string | null}
 */
function frameText(data) {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return decoder.decode(data);
  if (ArrayBuffer.isView(data)) return decoder.decode(data);
  return null;
}

export class WsConnection {
  /** @type {SocketLike | null} */
  #socket = null;
  #events;
  #opened = false;
  /** @type {Ready | null} */
  #ready = null;
  #finished = false;
  /** streams this connection may run at once: `limits.max_streams`, lowered by a `too_many_streams` */
  #limit = Infinity;
  /** @type {Map<string, Routed[]>} streams sent, waiting for their ack or refusal */
  #awaiting = new Map();
  /** @type {Map<string, Routed>} acked streams, until their terminal message */
  #active = new Map();
  /** @type {Set<string>} ids this connection sent a `cancel` for */
  #cancelled = new Set();
  /** @type {Set<string>} resumed ids the gateway has not confirmed yet (no event, no barrier `pong`) */
  #resumesPending = new Set();
  #keyCancels = 0; // `cancel`s by key sent before the barrier
  #barrier = false; // a barrier `ping` is on its way
  /** @type {ReturnType<typeof setTimeout> | null} */
  #openTimer = null;

  /**
   * @param {string} url
   * @param {WebSocketConstructor} WebSocketImpl
   * @param {ConnectionEvents} events
   */
  constructor(url, WebSocketImpl, events) {
    this.#events = events;
    try {
      this.#socket = /** @type {SocketLike} */ (new WebSocketImpl(url));
    } catch (error) {
      // e.g. a malformed URL or a blocked port: the same as a socket that never opened
      setTimeout(() => this.#closed({ code: 1006, reason: String(error) }), 0);
      return;
    }
    const socket = this.#socket;
    socket.binaryType = 'arraybuffer';
    this.#openTimer = setTimeout(() => {
      this.#abort();
      this.#closed({ code: 1006, reason: `not open after ${OPEN_TIMEOUT_MS} ms` });
    }, OPEN_TIMEOUT_MS);
    socket.onopen = () => {
      this.#opened = true;
      this.#clearOpenTimer();
      if (!this.#finished) this.#events.onOpen();
    };
    socket.onmessage = (event) => this.#frame(event.data);
    socket.onclose = (event) => this.#closed(event);
    socket.onerror = () => {}; // a close event follows
  }

  /** The gateway's `ready`, once it arrived. */
  get ready() {
    return this.#ready;
  }

  /** How many more streams may start here now (the limit less the streams not ended or refused). */
  get room() {
    return this.#limit - this.#running();
  }

  /**
   * Sends a `start`. A message the gateway would close the socket for (larger than
   * `limits.max_message_bytes`) fails the stream instead.
   * @param {Routed} routed
   * @param {StreamRequest & {id: string}} request
   */
  start(routed, request) {
    const text = JSON.stringify({ ...request, type: 'start' });
    const limit = this.#ready?.limits?.max_message_bytes;
    if (typeof limit === 'number') {
      const size = encoder.encode(text).length;
      if (size > limit) {
        const error = badMessage(request.id, `the start message is ${size} bytes; the gateway accepts at most ${limit}`);
        routed.sink.fail(error, true);
        return;
      }
    }
    const id = request.id;
    const waiting = this.#awaiting.get(id);
    if (waiting) waiting.push(routed);
    else this.#awaiting.set(id, [routed]);
    this.#send(text);
  }

  /**
   * Sends a `cancel`; the gateway answers with `done`/`cancelled` (or the terminal message that
   * was already on its way).
   * @param {Routed} routed
   */
  cancel(routed) {
    const id = routed.stream.id;
    this.#cancelled.add(id);
    if (this.#cancelled.size > CANCELLED_IDS_KEPT) {
      this.#cancelled.delete(/** @type {string} */ (this.#cancelled.values().next().value));
    }
    this.#send(JSON.stringify({ type: 'cancel', id }));
  }

  /**
   * Sends a `resume`: the gateway replays the stream's events after `afterSeq` under the stream's
   * id, then the live rest. The stream is active at once. Call `endResumes()` after the last one.
   * @param {Routed} routed
   * @param {string} key
   * @param {number} afterSeq
   */
  resume(routed, key, afterSeq) {
    const id = routed.stream.id;
    this.#active.set(id, routed);
    this.#resumesPending.add(id);
    this.#send(JSON.stringify({ type: 'resume', key, after_seq: afterSeq, id }));
  }

  /**
   * Sends a `cancel` by key (a stream cancelled while the client was disconnected); call it
   * after its `resume`, before `endResumes()`.
   * @param {string} key
   */
  cancelKey(key) {
    this.#keyCancels += 1;
    this.#send(JSON.stringify({ type: 'cancel', key }));
  }

  /** After the `resume`s: a `ping` whose `pong` confirms every resume not refused before it. */
  endResumes() {
    this.#barrier = true;
    this.#send(JSON.stringify({ type: 'ping', ts: BARRIER_TS }));
  }

  /**
   * The client gave up on a stream (seq gap): stop it upstream. Its entry stays routed, so the
   * rest of its messages are swallowed until the terminal one frees the id.
   * @param {Routed} routed
   */
  abandon(routed) {
    this.cancel(routed);
  }

  /**
   * Fails every stream sent on this connection that has not ended (the socket is gone).
   * @param {(id: string) => TokenwireError} makeError
   */
  failStreams(makeError) {
    const { acked, unacked } = this.takeStreams();
    for (const { stream, sink } of unacked.concat(acked)) sink.fail(makeError(stream.id));
  }

  /**
   * Hands back the streams that have not ended and forgets them (the socket is gone): `acked`
   * ones (resumed ones included) may be resumed elsewhere; `unacked` ones were never answered.
   * @returns {{acked: Routed[], unacked: Routed[]}}
   */
  takeStreams() {
    const unacked = [...this.#awaiting.values()].flat();
    const acked = [...this.#active.values()];
    this.#awaiting.clear();
    this.#active.clear();
    this.#resumesPending.clear();
    return { acked, unacked };
  }

  /**
   * Sends a `cancel` for every stream of this connection that has not ended (before `close()`:
   * a closed socket no longer cancels its streams; the gateway keeps them for a resume).
   */
  cancelStreams() {
    const ids = new Set([...this.#awaiting.keys(), ...this.#active.keys()]);
    for (const id of ids) this.#send(JSON.stringify({ type: 'cancel', id }));
  }

  /**
   * Closes the socket; no `onClose` is reported for a connection closed this way.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = 'client closed') {
    this.#finished = true;
    this.#abort(code, reason);
  }

  /**
   * Detaches from the socket and closes it.
   * @param {number} [code]
   * @param {string} [reason]
   */
  #abort(code, reason) {
    this.#clearOpenTimer();
    const socket = this.#socket;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = null;
    try {
      if (code === undefined) socket.close();
      else socket.close(code, reason);
    } catch {
      // already closing
    }
  }

  /** The streams sent (or resumed) here that have not ended or been refused. */
  #running() {
    let running = this.#active.size;
    for (const waiting of this.#awaiting.values()) running += waiting.length;
    return running;
  }

  #clearOpenTimer() {
    if (this.#openTimer !== null) clearTimeout(this.#openTimer);
    this.#openTimer = null;
  }

  /** @param {string} text */
  #send(text) {
    const socket = this.#socket;
    if (!socket || socket.readyState !== OPEN) return; // the close handler fails the streams
    try {
      socket.send(text);
    } catch {
      // the socket is going away; its close event follows
    }
  }

  /** @param {{code?: number, reason?: string}} event */
  #closed(event) {
    this.#clearOpenTimer();
    if (this.#finished) return;
    this.#finished = true;
    this.#events.onClose({
      code: typeof event.code === 'number' ? event.code : 1006,
      reason: typeof event.reason === 'string' ? event.reason : '',
      opened: this.#opened,
      ready: this.#ready !== null,
    });
  }

  /** @param {unknown} data */
  #frame(data) {
    if (this.#finished) return;
    const text = frameText(data);
    if (text === null) return;
    /** @type {ServerMessage} */
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return; // not JSON: nothing to route
    }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'ready':
        this.#ready = msg;
        if (typeof msg.limits?.max_streams === 'number') this.#limit = msg.limits.max_streams;
        this.#events.onReady(msg);
        return;
      case 'start': {
        const waiting = this.#awaiting.get(msg.id);
        const routed = waiting?.shift();
        if (waiting && waiting.length === 0) this.#awaiting.delete(msg.id);
        if (!routed) return;
        this.#active.set(msg.id, routed);
        routed.sink.message(msg);
        return;
      }
      case 'chunk':
      case 'reasoning':
      case 'tool_call_start':
      case 'tool_call_delta':
      case 'tool_call_end':
        this.#resumesPending.delete(msg.id); // an event: the resume was accepted
        this.#active.get(msg.id)?.sink.message(msg);
        return;
      case 'notice': // no seq: it goes to the acked stream of its id, like a chunk
        this.#active.get(msg.id)?.sink.message(msg);
        return;
      case 'done':
        this.#terminal(msg);
        this.#events.onRoom();
        return;
      case 'error':
        if (typeof msg.seq === 'number') this.#terminal(msg);
        else this.#reply(msg);
        this.#events.onRoom();
        return;
      case 'pong':
        if (this.#barrier && msg.ts === BARRIER_TS) {
          // every resume before the barrier that was not refused was accepted
          this.#barrier = false;
          this.#resumesPending.clear();
          this.#keyCancels = 0;
        }
        return;
      default: // message types this client does not know
    }
  }

  /** @param {ServerMessage & {id?: string | null}} msg */
  #terminal(msg) {
    const id = msg.id ?? '';
    const routed = this.#active.get(id);
    if (!routed) return;
    this.#active.delete(id);
    this.#resumesPending.delete(id);
    routed.sink.message(msg);
  }

  /**
   * An `error` without `seq`: the refusal of the oldest unanswered `start` of that id, a reply to
   * a `cancel`, or a connection-level error.
   * @param {import('../index.js').ErrorMessage} msg
   */
  #reply(msg) {
    const id = typeof msg.id === 'string' ? msg.id : null;
    if (id !== null && this.#resumesPending.has(id)) {
      // the refusal of a resume (stream_expired, duplicate_stream, too_many_streams…)
      this.#resumesPending.delete(id);
      const resumed = this.#active.get(id);
      this.#active.delete(id);
      if (resumed) this.#events.onResumeRefused(resumed, fromErrorMessage(msg));
      return;
    }
    if (id === null && msg.code === 'unknown_stream' && this.#keyCancels > 0) {
      this.#keyCancels -= 1; // a key cancelled while disconnected is no longer known: the resume says why
      return;
    }
    if (id !== null && msg.code === 'unknown_stream' && this.#cancelled.has(id)) return;
    const waiting = id === null || msg.code === 'unknown_stream' ? undefined : this.#awaiting.get(id);
    const routed = waiting?.shift();
    if (waiting && waiting.length === 0) this.#awaiting.delete(/** @type {string} */ (id));
    if (!routed) {
      this.#events.onStray(fromErrorMessage(msg));
    } else if (msg.code === 'too_many_streams') {
      // The gateway runs fewer streams here than it announced: no more than run now (at least one).
      this.#limit = Math.max(1, Math.min(this.#limit, this.#running()));
      this.#events.onTooManyStreams(routed, fromErrorMessage(msg));
    } else {
      routed.sink.fail(fromErrorMessage(msg));
    }
  }
}
