/**
 * What a stream's async iterators read: `Feed`, an append-only list every iterator reads from
 * the start, and `Latest`, one value that changes, whose iterators skip the versions they were
 * too slow to see (partial objects: only the newest snapshot matters).
 * @module
 */

/**
 * @template T
 * @typedef {object} Source
 * @property {() => T | undefined} take the next item for this iterator, or undefined
 * @property {() => boolean} ended
 * @property {() => unknown} error the error that ended the source, or null
 * @property {(wake: () => void) => void} wait
 */

/**
 * An async iterator over a source: ends once the source ended and has nothing more for it,
 * throws its error (once), and `return()` closes it early.
 * @template T
 * @param {Source<T>} source
 * @returns {AsyncIterableIterator<T>}
 */
function iterate(source) {
  let closed = false; // by return(), or after the error was thrown once
  /** @type {AsyncIterableIterator<T>} */
  const iterator = {
    next: async () => {
      for (;;) {
        if (closed) return { value: undefined, done: true };
        const item = source.take();
        if (item !== undefined) return { value: item, done: false };
        const error = source.error();
        if (error) {
          closed = true;
          throw error;
        }
        if (source.ended()) return { value: undefined, done: true };
        await new Promise((wake) => source.wait(() => wake(undefined)));
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

class Waiting {
  /** @type {unknown} */
  error = null;
  ended = false;
  /** @type {Array<() => void>} */
  #waiters = [];

  /** @param {() => void} wake */
  wait(wake) {
    this.#waiters.push(wake);
  }

  wake() {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** @param {unknown} [error] */
  end(error = null) {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.wake();
  }
}

/** @template T */
export class Feed extends Waiting {
  /** @type {T[]} */
  items = [];

  /** @param {T} item */
  push(item) {
    this.items.push(item);
    this.wake();
  }

  /** @returns {AsyncIterableIterator<T>} every item from the first */
  iterate() {
    let index = 0;
    return iterate({
      take: () => (index < this.items.length ? this.items[index++] : undefined),
      ended: () => this.ended,
      error: () => this.error,
      wait: (wake) => this.wait(wake),
    });
  }
}

/** @template T */
export class Latest extends Waiting {
  /** @type {T | undefined} */
  value = undefined;
  version = 0;

  /** @param {T} value */
  set(value) {
    this.value = value;
    this.version += 1;
    this.wake();
  }

  /** @returns {AsyncIterableIterator<T>} the current value (if any), then each newer one */
  iterate() {
    let seen = 0;
    return iterate({
      take: () => {
        if (seen === this.version) return undefined;
        seen = this.version;
        return this.value;
      },
      ended: () => this.ended,
      error: () => this.error,
      wait: (wake) => this.wait(wake),
    });
  }
}
