/**
 * Reconnect delays: exponential backoff with jitter.
 * @module
 */

/** @typedef {import('../index.js').ReconnectOptions} ReconnectOptions */
/** @typedef {Required<ReconnectOptions>} ReconnectPolicy */

/** @type {ReconnectPolicy} */
export const DEFAULT_RECONNECT = Object.freeze({
  initialDelayMs: 250,
  maxDelayMs: 10_000,
  factor: 2,
  jitter: 0.5,
  maxAttempts: Infinity,
});

/**
 * The reconnect policy for the `reconnect` option, or null when reconnecting is off.
 * @param {boolean | ReconnectOptions | undefined} option
 * @returns {ReconnectPolicy | null}
 */
export function reconnectPolicy(option) {
  if (option === false) return null;
  const given = option === true || option === undefined ? {} : option;
  /** @type {ReconnectPolicy} */
  const policy = { ...DEFAULT_RECONNECT };
  for (const key of /** @type {(keyof ReconnectPolicy)[]} */ (Object.keys(DEFAULT_RECONNECT))) {
    const value = given[key];
    if (value !== undefined) {
      if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
        throw new TypeError(`reconnect.${key} must be a non-negative number`);
      }
      policy[key] = value;
    }
  }
  policy.jitter = Math.min(1, policy.jitter);
  return policy;
}

/**
 * The delay before reconnect attempt `attempt` (1, 2, 3 …).
 *
 * The exponential delay is `min(maxDelayMs, initialDelayMs × factor^(attempt − 1))`; the wait is
 * drawn uniformly from `[delay × (1 − jitter), delay]`. `jitter: 1` is "full jitter" (anywhere
 * between 0 and the delay), `jitter: 0` no randomness.
 * @param {number} attempt
 * @param {ReconnectPolicy} policy
 * @param {() => number} [random]
 * @returns {number} milliseconds (an integer)
 */
export function backoffDelay(attempt, policy, random = Math.random) {
  const exponent = Math.max(0, attempt - 1);
  const delay = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** exponent);
  return Math.round(delay * (1 - policy.jitter * random()));
}
