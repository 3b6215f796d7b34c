/**
 * A small Server-Sent Events parser following the WHATWG "event stream interpretation" rules:
 * UTF-8 decoded incrementally (a character split across reads is kept whole), a leading BOM
 * dropped, lines ended by CRLF, LF or CR (also when CR and LF arrive in different reads),
 * `event`, `data`, `id` and `retry` fields, comment lines (`:`) ignored, one optional space after
 * the colon removed, an event dispatched on an empty line, and an unterminated event at the end
 * of the stream discarded.
 * @module
 */

/** @typedef {import('../index.js').SseEvent} SseEvent */

export class SseParser {
  #decoder = new TextDecoder('utf-8');
  #buffer = '';
  #skipLF = false; // the previous read ended with CR: a LF at the start of the next one belongs to it
  #data = '';
  #hasData = false;
  #event = '';
  /** The last event id seen (the spec's "last event ID string"). */
  lastEventId = '';
  /** @type {number | null} the reconnection time the server asked for, if any */
  retry = null;

  /**
   * Feeds bytes (or already decoded text) and returns the events they complete.
   * @param {Uint8Array | string} chunk
   * @returns {SseEvent[]}
   */
  push(chunk) {
    const text = typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, { stream: true });
    return this.#feed(text);
  }

  /**
   * The stream ended: flushes the decoder. An event without its final empty line is discarded,
   * as the spec requires, so this returns no events.
   * @returns {SseEvent[]}
   */
  end() {
    this.#feed(this.#decoder.decode());
    this.#buffer = '';
    this.#data = '';
    this.#hasData = false;
    this.#event = '';
    return [];
  }

  /**
   * @param {string} text
   * @returns {SseEvent[]}
   */
  #feed(text) {
    if (!text) return [];
    if (this.#skipLF) {
      this.#skipLF = false;
      if (text.charCodeAt(0) === 10) text = text.slice(1);
    }
    /** @type {SseEvent[]} */
    const out = [];
    let buffer = this.#buffer + text;
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.#line(buffer.slice(start, i), out);
      if (c === 13) {
        if (i + 1 === buffer.length) this.#skipLF = true;
        else if (buffer.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.#buffer = buffer.slice(start);
    return out;
  }

  /**
   * @param {string} line
   * @param {SseEvent[]} out
   */
  #line(line, out) {
    if (line === '') {
      this.#dispatch(out);
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' a comment, e.g. ": keep-alive"
    const colon = line.indexOf(':');
    let field = line;
    let value = '';
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this.#event = value;
        break;
      case 'data':
        this.#data += value + '\n';
        this.#hasData = true;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default: // unknown fields are ignored
    }
  }

  /** @param {SseEvent[]} out */
  #dispatch(out) {
    if (!this.#hasData) {
      this.#event = '';
      return;
    }
    out.push({ type: this.#event || 'message', data: this.#data.slice(0, -1), id: this.lastEventId });
    this.#data = '';
    this.#hasData = false;
    this.#event = '';
  }
}
