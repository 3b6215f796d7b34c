/**
 * The HTTP fallback: one `POST {base}/v1/streams` per stream, its `text/event-stream` body read
 * with `fetch` and SseParser. When the body breaks before the stream's terminal event, the stream
 * is resumed with `GET {base}/v1/streams/{key}` and `Last-Event-ID` (a few attempts, with
 * backoff). Cancelling is `DELETE {base}/v1/streams/{key}`, and the request is aborted when the
 * stream does not end promptly after that.
 * @module
 */

import { backoffDelay } from './backoff.js';
import { connectionLost, fromHttpError, TokenwireError } from './errors.js';
import { SseParser } from './sse-parser.js';

/** @typedef {import('./stream.js').TokenwireStream} TokenwireStream */
/** @typedef {import('./stream.js').StreamSink} StreamSink */
/** @typedef {import('./backoff.js').ReconnectPolicy} ReconnectPolicy */
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
/** Consecutive failed `GET /v1/streams/{key}` attempts before a broken stream fails (at most `reconnect.maxAttempts`). */
export const SSE_RESUME_ATTEMPTS = 5;

/**
 * Why one response stopped delivering events before the stream ended.
 * @typedef {object} Break
 * @property {string} detail
 * @property {unknown} [cause]
 * @property {boolean} progressed whether it delivered at least one event
 */

export class SseTransport {
  #base;
  #token;
  #fetch;
  #policy;
  /** @type {Map<TokenwireStream, SseEntry>} */
  #entries = new Map();

  /**
   * @param {string} httpBase e.g. `http://127.0.0.1:8000` (no trailing slash)
   * @param {string | undefined} token
   * @param {FetchLike} fetchImpl
   * @param {ReconnectPolicy | null} [policy] resume delays; null: a broken stream fails at once
   */
  constructor(httpBase, token, fetchImpl, policy = null) {
    this.#base = httpBase;
    this.#token = token;
    this.#fetch = fetchImpl;
    this.#policy = policy;
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
    // The key comes with the ack, the first event: until then, the DELETE waits for it.
    if (entry.sink.acked()) this.#delete(entry);
    this.#abortAfter(entry, CANCEL_GRACE_MS + CANCEL_FALLBACK_MS);
  }

  /**
   * The client gave up on the stream (seq gap): cancel it on the gateway (closing the request
   * alone would leave it running there, waiting for a resume) and stop reading.
   * @param {TokenwireStream} stream
   */
  abandon(stream) {
    const entry = this.#entries.get(stream);
    if (!entry) return;
    if (entry.sink.acked()) this.#delete(entry);
    entry.controller.abort();
  }

  /**
   * Fails and aborts every running request, cancelling the streams on the gateway.
   * @param {(id: string) => TokenwireError} makeError
   */
  closeAll(makeError) {
    for (const entry of [...this.#entries.values()]) {
      if (entry.sink.acked()) this.#delete(entry);
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
    const broke = await this.#read(entry, response);
    if (broke) await this.#resume(entry, broke);
  }

  /**
   * Reads one event-stream response until the stream ends or the response does.
   * @param {SseEntry} entry
   * @param {Response} response
   * @returns {Promise<Break | null>} null once the stream has ended
   */
  async #read(entry, response) {
    const { sink } = entry;
    if (!response.body) return { detail: 'the gateway answered without a body', progressed: false };
    const reader = response.body.getReader();
    const parser = new SseParser();
    let progressed = false;
    try {
      while (!sink.ended()) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const event of parser.push(value)) {
          progressed = true;
          this.#event(entry, event.data);
          if (sink.ended()) break;
        }
      }
    } catch (error) {
      if (!sink.ended()) return { detail: `the event stream broke: ${describe(error)}`, cause: error, progressed };
    } finally {
      parser.end();
      if (sink.ended()) reader.cancel().catch(() => {});
    }
    if (sink.ended()) return null;
    return { detail: "the event stream ended before the stream's last message", progressed };
  }

  /**
   * The response broke before the terminal event: `GET /v1/streams/{key}` with `Last-Event-ID`
   * (the last seq the stream has) until the stream ends. A response that delivered events resets
   * the count of attempts; `SSE_RESUME_ATTEMPTS` failed ones in a row (or a refusal such as
   * `stream_expired`) fail the stream with `connection_lost`.
   * @param {SseEntry} entry
   * @param {Break} broke
   */
  async #resume(entry, broke) {
    const { stream, sink, controller } = entry;
    const policy = this.#policy;
    const key = sink.key();
    const attempts = policy ? Math.min(SSE_RESUME_ATTEMPTS, policy.maxAttempts) : 0;
    if (!policy || !key || attempts < 1) {
      sink.fail(connectionLost(stream.id, broke.detail, broke.cause));
      return;
    }
    const lost = broke.detail;
    let failed = 0;
    while (!sink.ended()) {
      if (failed >= attempts) {
        const detail = `${lost}; resuming failed ${failed} times in a row (last: ${broke.detail})`;
        sink.fail(connectionLost(stream.id, detail, broke.cause));
        return;
      }
      failed += 1;
      await sleep(backoffDelay(failed, policy), controller.signal);
      if (sink.ended() || controller.signal.aborted) return;
      /** @type {Response} */
      let response;
      try {
        response = await this.#fetch(`${this.#base}/v1/streams/${encodeURIComponent(key)}`, {
          method: 'GET',
          headers: { ...this.#headers(), 'last-event-id': String(sink.lastSeq()) },
          signal: controller.signal,
          cache: 'no-store',
        });
      } catch (error) {
        broke = { detail: `could not reach the gateway: ${describe(error)}`, cause: error, progressed: false };
        continue;
      }
      if (!response.ok) {
        const refusal = await httpError(response, stream.id);
        if (!refusal.retryable) {
          // stream_expired (the gateway no longer knows the key), unauthorized…: no resume
          const detail = `${lost}; the stream could not be resumed (${refusal.code}: ${refusal.message})`;
          sink.fail(connectionLost(stream.id, detail, refusal));
          return;
        }
        broke = { detail: `${refusal.code}: ${refusal.message}`, cause: refusal, progressed: false };
        continue;
      }
      sink.resuming();
      const next = await this.#read(entry, response);
      if (!next) return;
      broke = next;
      if (next.progressed) failed = 0;
    }
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

  /**
   * `DELETE /v1/streams/{key}` (by id only for a gateway that sends no key).
   * @param {SseEntry} entry
   */
  #delete(entry) {
    if (entry.deleteSent) return;
    entry.deleteSent = true;
    const name = entry.sink.key() ?? entry.stream.id;
    const url = `${this.#base}/v1/streams/${encodeURIComponent(name)}`;
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

/**
 * Waits `ms`, or less when `signal` aborts.
 * @param {number} ms
 * @param {AbortSignal} signal
 * @returns {Promise<void>}
 */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** @param {unknown} error */
function describe(error) {
  return error instanceof Error ? error.message : String(error);
}
