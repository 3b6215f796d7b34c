/**
 * The HTTP fallback: one `POST {base}/v1/streams` per stream, its `text/event-stream` body read
 * with `fetch` and SseParser; cancelling is `DELETE {base}/v1/streams/{id}`, and the request is
 * aborted when the stream does not end promptly after that.
 * @module
 */

import { connectionLost, fromHttpError, TokenwireError } from './errors.js';
import { SseParser } from './sse-parser.js';

/** @typedef {import('./stream.js').TokenwireStream} TokenwireStream */
/** @typedef {import('./stream.js').StreamSink} StreamSink */
/** @typedef {import('../index.js').StreamRequest} StreamRequest */
/** @typedef {import('../index.js').FetchLike} FetchLike */
/** @typedef {import('../index.js').ServerMessage} ServerMessage */

/**
 * @typedef {object} SseEntry
 * @property {TokenwireStream} stream
 * @property {StreamSink} sink
 * @property {AbortController} controller
 * @property {boolean} deleteSent
 * @property {ReturnType<typeof setTimeout> | null} timer
 */

/** After a `DELETE` was answered 204: how long to wait for `done` before aborting the request. */
export const CANCEL_GRACE_MS = 2000;
/** After a `DELETE` failed (e.g. 404: the gateway does not know the stream yet or any more). */
const CANCEL_FALLBACK_MS = 250;

export class SseTransport {
  #base;
  #token;
  #fetch;
  /** @type {Map<TokenwireStream, SseEntry>} */
  #entries = new Map();

  /**
   * @param {string} httpBase e.g. `http://127.0.0.1:8000` (no trailing slash)
   * @param {string | undefined} token
   * @param {FetchLike} fetchImpl
   */
  constructor(httpBase, token, fetchImpl) {
    this.#base = httpBase;
    this.#token = token;
    this.#fetch = fetchImpl;
  }

  /**
   * Starts the stream's request.
   * @param {{stream: TokenwireStream, sink: StreamSink}} routed
   * @param {StreamRequest & {id: string}} request
   */
  start(routed, request) {
    /** @type {SseEntry} */
    const entry = { ...routed, controller: new AbortController(), deleteSent: false, timer: null };
    this.#entries.set(routed.stream, entry);
    this.#run(entry, JSON.stringify(request))
      .catch((error) => entry.sink.fail(connectionLost(entry.stream.id, describe(error), error)))
      .finally(() => {
        if (entry.timer !== null) clearTimeout(entry.timer);
        this.#entries.delete(entry.stream);
      });
  }

  /** @param {TokenwireStream} stream */
  cancel(stream) {
    const entry = this.#entries.get(stream);
    if (!entry) return;
    // The gateway knows the id once it has answered the POST; the ack is the first event.
    if (entry.sink.acked()) this.#delete(entry);
    this.#abortAfter(entry, CANCEL_GRACE_MS + CANCEL_FALLBACK_MS);
  }

  /**
   * The client gave up on the stream (seq gap): closing the request cancels it upstream.
   * @param {TokenwireStream} stream
   */
  abandon(stream) {
    this.#entries.get(stream)?.controller.abort();
  }

  /**
   * Fails and aborts every running request.
   * @param {(id: string) => TokenwireError} makeError
   */
  closeAll(makeError) {
    for (const entry of [...this.#entries.values()]) {
      entry.sink.fail(makeError(entry.stream.id));
      entry.controller.abort();
    }
  }

  /** @returns {Record<string, string>} */
  #headers() {
    /** @type {Record<string, string>} */
    const headers = { accept: 'text/event-stream' };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    return headers;
  }

  /**
   * @param {SseEntry} entry
   * @param {string} body
   */
  async #run(entry, body) {
    const { stream, sink, controller } = entry;
    /** @type {Response} */
    let response;
    try {
      response = await this.#fetch(`${this.#base}/v1/streams`, {
        method: 'POST',
        headers: { ...this.#headers(), 'content-type': 'application/json' },
        body,
        signal: controller.signal,
        cache: 'no-store',
      });
    } catch (error) {
      sink.fail(connectionLost(stream.id, `could not reach the gateway: ${describe(error)}`, error));
      return;
    }
    if (!response.ok) {
      sink.fail(await httpError(response, stream.id));
      return;
    }
    if (!response.body) {
      sink.fail(connectionLost(stream.id, 'the gateway answered without a body'));
      return;
    }
    const reader = response.body.getReader();
    const parser = new SseParser();
    try {
      while (!sink.ended()) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const event of parser.push(value)) {
          this.#event(entry, event.data);
          if (sink.ended()) break;
        }
      }
    } catch (error) {
      sink.fail(connectionLost(stream.id, `the event stream broke: ${describe(error)}`, error));
    } finally {
      parser.end();
      if (sink.ended()) reader.cancel().catch(() => {});
    }
    sink.fail(connectionLost(stream.id, "the event stream ended before the stream's last message"));
  }

  /**
   * @param {SseEntry} entry
   * @param {string} data
   */
  #event(entry, data) {
    /** @type {ServerMessage} */
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    entry.sink.message(msg);
    if (msg.type === 'start' && entry.sink.cancelRequested() && !entry.deleteSent) this.#delete(entry);
  }

  /** @param {SseEntry} entry */
  #delete(entry) {
    if (entry.deleteSent) return;
    entry.deleteSent = true;
    const url = `${this.#base}/v1/streams/${encodeURIComponent(entry.stream.id)}`;
    this.#fetch(url, { method: 'DELETE', headers: this.#headers() })
      .then((response) => {
        response.body?.cancel().catch(() => {});
        if (response.status !== 204) this.#abortAfter(entry, CANCEL_FALLBACK_MS);
        else this.#abortAfter(entry, CANCEL_GRACE_MS);
      })
      .catch(() => this.#abortAfter(entry, CANCEL_FALLBACK_MS));
  }

  /**
   * Aborts the request (which ends the stream as cancelled) unless it ends within `ms`.
   * @param {SseEntry} entry
   * @param {number} ms
   */
  #abortAfter(entry, ms) {
    if (entry.sink.ended()) return;
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      entry.sink.cancelled();
      entry.controller.abort();
    }, ms);
  }
}

/**
 * @param {Response} response
 * @param {string} streamId
 */
async function httpError(response, streamId) {
  /** @type {unknown} */
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON (e.g. a proxy's HTML error page)
  }
  return fromHttpError(response.status, body, response.headers.get('retry-after'), streamId);
}

/** @param {unknown} error */
function describe(error) {
  return error instanceof Error ? error.message : String(error);
}
