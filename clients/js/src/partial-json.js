/**
 * A tolerant parser for JSON that is still arriving: the value the text describes so far, with
 * open strings, arrays and objects closed, a key without its value dropped, and a number or
 * literal cut short taken as far as it is valid (`1.` → 1, `tr` → true). Used for the
 * partial-object view of a json / json_schema stream; exported as `parsePartialJson`.
 * @module
 */

import { Latest } from './feed.js';

/** @typedef {import('../index.js').PartialJson} PartialJson */

const NONE = Symbol('nothing yet'); // a value that has not started, or cannot be shown yet
const INVALID = new Error('invalid JSON'); // thrown inside the parser only

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
// What a number may be while more digits are still to come ("-", "1.", "2e", "2e-").
const NUMBER_PREFIX = /-?(?:(?:0|[1-9]\d*)(?:\.\d*)?(?:[eE][+-]?\d*)?)?/y;
const LITERALS = /** @type {const} */ ([
  ['true', true],
  ['false', false],
  ['null', null],
]);
/** @type {Record<string, string>} */
const ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const HEX4 = /^[0-9a-fA-F]{4}$/;

/**
 * Parses what there is of a JSON text.
 *
 * `state` is `'empty'` (nothing but whitespace yet), `'partial'` (a prefix of a JSON text:
 * `value` is its snapshot, or undefined when not even the top value has a shape yet),
 * `'complete'` (a whole JSON text: `value` equals `JSON.parse(text)`), or `'invalid'` (no JSON
 * text starts like this; `value` is undefined).
 * @param {string} text
 * @returns {PartialJson}
 */
export function parsePartialJson(text) {
  const parser = new Parser(text);
  try {
    parser.space();
    if (parser.eof()) return { value: undefined, state: 'empty' };
    const value = parser.value();
    if (!parser.partial) {
      parser.space();
      if (!parser.eof()) throw INVALID; // something after the whole value
    }
    return { value: value === NONE ? undefined : value, state: parser.partial ? 'partial' : 'complete' };
  } catch (error) {
    if (error === INVALID || error instanceof RangeError) return { value: undefined, state: 'invalid' }; // RangeError: nested too deep
    throw error;
  }
}

class Parser {
  /** @param {string} text */
  constructor(text) {
    this.s = text;
    this.i = 0;
    /** Set once the text ended inside a value: every open container returns what it has. */
    this.partial = false;
  }

  eof() {
    return this.i >= this.s.length;
  }

  space() {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.i++;
    }
  }

  /** @returns {unknown} a value, or NONE when the text ended before it had a shape */
  value() {
    this.space();
    if (this.eof()) {
      this.partial = true;
      return NONE;
    }
    const c = this.s[this.i];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    return this.literal();
  }

  object() {
    /** @type {Record<string, unknown>} */
    const object = {};
    this.i++; // {
    let first = true;
    for (;;) {
      this.space();
      if (this.end()) return object;
      if (first && this.s[this.i] === '}') {
        this.i++;
        return object;
      }
      if (this.s[this.i] !== '"') throw INVALID;
      const key = this.string();
      if (this.partial) return object; // a key without its value yet: left out
      this.space();
      if (this.end()) return object;
      if (this.s[this.i] !== ':') throw INVALID;
      this.i++;
      const value = this.value();
      if (value === NONE) return object;
      // `__proto__` as an own property, as JSON.parse makes it
      Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
      if (this.partial) return object;
      if (this.close('}')) return object;
      first = false;
    }
  }

  array() {
    /** @type {unknown[]} */
    const array = [];
    this.i++; // [
    this.space();
    if (this.end()) return array;
    if (this.s[this.i] === ']') {
      this.i++;
      return array;
    }
    for (;;) {
      const value = this.value();
      if (value === NONE) return array;
      array.push(value);
      if (this.partial) return array;
      if (this.close(']')) return array;
    }
  }

  /**
   * After a member: `,` (another follows: false) or the closing bracket (true); the text ending
   * here leaves the container open (true, partial).
   * @param {string} bracket
   */
  close(bracket) {
    this.space();
    if (this.end()) return true;
    const c = this.s[this.i++];
    if (c === bracket) return true;
    if (c === ',') return false;
    throw INVALID;
  }

  /** True (and partial) when the text ends here. */
  end() {
    if (this.eof()) this.partial = true;
    return this.partial;
  }

  string() {
    const s = this.s;
    this.i++; // "
    let out = '';
    let from = this.i;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x22) {
        out += s.slice(from, this.i++);
        return out;
      }
      if (c === 0x5c) {
        out += s.slice(from, this.i);
        const escaped = this.escape();
        if (escaped === null) {
          from = s.length; // the text ends inside the escape: leave it out
          break;
        }
        out += escaped;
        from = this.i;
        continue;
      }
      if (c < 0x20) throw INVALID; // control characters must be escaped
      this.i++;
    }
    out += s.slice(from);
    this.partial = true;
    return dropLoneHighSurrogate(out);
  }

  /** @returns {string | null} the escaped character, or null when the text ends inside the escape */
  escape() {
    const s = this.s;
    const kind = s[this.i + 1];
    if (kind === undefined) {
      this.i = s.length;
      return null;
    }
    if (kind === 'u') {
      const hex = s.slice(this.i + 2, this.i + 6);
      if (hex.length < 4) {
        if (!/^[0-9a-fA-F]*$/.test(hex)) throw INVALID;
        this.i = s.length;
        return null;
      }
      if (!HEX4.test(hex)) throw INVALID;
      this.i += 6;
      return String.fromCharCode(parseInt(hex, 16));
    }
    const char = ESCAPES[kind];
    if (char === undefined) throw INVALID;
    this.i += 2;
    return char;
  }

  number() {
    const s = this.s;
    NUMBER.lastIndex = this.i;
    const whole = NUMBER.exec(s);
    const end = whole ? NUMBER.lastIndex : this.i;
    if (end < s.length) {
      NUMBER_PREFIX.lastIndex = this.i;
      NUMBER_PREFIX.exec(s);
      if (NUMBER_PREFIX.lastIndex === s.length) this.partial = true; // "1." or "-": more to come
      else if (!whole) throw INVALID;
    }
    this.i = this.partial ? s.length : end;
    return whole ? Number(whole[0]) : NONE;
  }

  literal() {
    const s = this.s;
    const rest = s.slice(this.i, this.i + 5);
    for (const [word, value] of LITERALS) {
      if (rest.startsWith(word)) {
        this.i += word.length;
        return value;
      }
      if (this.i + rest.length === s.length && rest.length < word.length && word.startsWith(rest)) {
        this.i = s.length;
        this.partial = true;
        return value;
      }
    }
    throw INVALID;
  }
}

/**
 * A string cut between the two halves of a surrogate pair ends in half a character: leave it
 * out until the other half arrives.
 * @param {string} text
 */
function dropLoneHighSurrogate(text) {
  const last = text.charCodeAt(text.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? text.slice(0, -1) : text;
}

/** The partial-object view of a stream's JSON text: a new snapshot only when the value changed. */
export class PartialObjects {
  /** @type {Latest<unknown>} */
  latest = new Latest();
  /** @type {string | undefined} the current snapshot as JSON, to tell a change */
  #json = undefined;

  /**
   * @param {string} text the stream's whole text so far
   * @returns {boolean} whether there is a new snapshot
   */
  update(text) {
    const { value } = parsePartialJson(text);
    return value !== undefined && this.set(value);
  }

  /**
   * @param {unknown} value a snapshot, or the final object from `done`
   * @returns {boolean} whether it differs from the current one
   */
  set(value) {
    const json = JSON.stringify(value);
    if (json === this.#json) return false;
    this.#json = json;
    this.latest.set(value);
    return true;
  }
}
