/**
 * TokenwireError: every failure the client reports, whether the gateway sent it (a refusal, a
 * terminal stream error, an HTTP error body) or the client detected it (lost connection, seq gap).
 * @module
 */

/** @typedef {import('../index.js').ErrorMessage} ErrorMessage */
/** @typedef {import('../index.js').TokenwireErrorInit} TokenwireErrorInit */

export class TokenwireError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {TokenwireErrorInit} [init]
   */
  constructor(code, message, init = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'TokenwireError';
    /** @type {string} */
    this.code = code;
    /** @type {boolean} */
    this.retryable = init.retryable ?? false;
    /** @type {number | null} */
    this.retryAfter = init.retryAfter ?? null;
    /** @type {number | null} */
    this.status = init.status ?? null;
    /** @type {string | null} */
    this.provider = init.provider ?? null;
    /** @type {string | null} */
    this.streamId = init.streamId ?? null;
  }
}

/**
 * An `error` message of the protocol (refusal, reply or terminal) as a TokenwireError.
 * @param {ErrorMessage} msg
 * @returns {TokenwireError}
 */
export function fromErrorMessage(msg) {
  return new TokenwireError(String(msg.code), String(msg.message ?? msg.code), {
    retryable: msg.retryable === true,
    retryAfter: typeof msg.retry_after_s === 'number' ? msg.retry_after_s : null,
    status: typeof msg.status === 'number' ? msg.status : null,
    provider: typeof msg.provider === 'string' ? msg.provider : null,
    streamId: typeof msg.id === 'string' ? msg.id : null,
  });
}

/**
 * A non-2xx HTTP answer (`{"error": {code, message, retryable, retry_after_s?}}`) as a TokenwireError.
 * `status` is the HTTP status of the answer.
 * @param {number} status
 * @param {unknown} body the parsed JSON body, or null when it was not JSON
 * @param {string | null} retryAfterHeader
 * @param {string | null} streamId
 * @returns {TokenwireError}
 */
export function fromHttpError(status, body, retryAfterHeader, streamId) {
  const error = /** @type {Record<string, unknown> | undefined} */ (
    body && typeof body === 'object' && 'error' in body && body.error && typeof body.error === 'object'
      ? body.error
      : undefined
  );
  let retryAfter = typeof error?.retry_after_s === 'number' ? error.retry_after_s : null;
  if (retryAfter === null && retryAfterHeader && /^\d+(\.\d+)?$/.test(retryAfterHeader.trim())) {
    retryAfter = Number(retryAfterHeader);
  }
  const code = typeof error?.code === 'string' ? error.code : `http_${status}`;
  const message = typeof error?.message === 'string' ? error.message : `the gateway answered HTTP ${status}`;
  const retryable =
    typeof error?.retryable === 'boolean' ? error.retryable : status === 429 || status >= 500;
  return new TokenwireError(code, message, { retryable, retryAfter, status, streamId });
}

/**
 * The socket (or the HTTP response) ended before the stream's terminal message.
 * @param {string | null} streamId
 * @param {string} [detail]
 * @param {unknown} [cause]
 */
export function connectionLost(streamId, detail = 'the connection to the gateway was lost', cause) {
  return new TokenwireError('connection_lost', detail, { retryable: true, streamId, cause });
}

/**
 * `client.close()` was called while the stream ran.
 * @param {string | null} streamId
 */
export function clientClosed(streamId) {
  return new TokenwireError('closed', 'the client was closed', { retryable: false, streamId });
}

/**
 * A skipped `seq` number: the stream was cut off.
 * @param {string} streamId
 * @param {number} expected
 * @param {number} got
 */
export function protocolGap(streamId, expected, got) {
  return new TokenwireError(
    'protocol_gap',
    `stream \`${streamId}\`: expected seq ${expected}, got ${got}`,
    { retryable: true, streamId },
  );
}

/**
 * WebSocket closed with 1008 (policy violation): missing/wrong token or refused origin.
 * @param {string | null} streamId
 * @param {string} reason
 */
export function unauthorized(streamId, reason) {
  return new TokenwireError('unauthorized', reason || 'a valid API token is required', {
    retryable: false,
    streamId,
  });
}

/**
 * A request the client refuses to send (the gateway would refuse it without an id to route by).
 * @param {string | null} streamId
 * @param {string} message
 */
export function badMessage(streamId, message) {
  return new TokenwireError('bad_message', message, { retryable: false, streamId });
}
