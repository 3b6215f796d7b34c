// parsePartialJson: snapshots of JSON text still arriving, split anywhere.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePartialJson } from '../src/index.js';

const partial = (text) => {
  const result = parsePartialJson(text);
  assert.equal(result.state, 'partial', `${JSON.stringify(text)} → ${JSON.stringify(result)}`);
  return result.value;
};

/** A seeded generator (mulberry32), so a failure can be replayed. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Whether a snapshot can grow into `final`: strings are prefixes, containers hold a prefix of
 * the items or a subset of the keys (numbers may still gain digits, so any number fits).
 */
function growsInto(snapshot, final) {
  if (typeof snapshot === 'number') return typeof final === 'number';
  if (typeof snapshot === 'string') return typeof final === 'string' && final.startsWith(snapshot);
  if (snapshot === null || typeof snapshot === 'boolean') return snapshot === final;
  if (Array.isArray(snapshot)) {
    return Array.isArray(final) && snapshot.length <= final.length && snapshot.every((item, i) => growsInto(item, final[i]));
  }
  return (
    typeof final === 'object' && final !== null && !Array.isArray(final) &&
    Object.keys(snapshot).every((key) => Object.hasOwn(final, key) && growsInto(snapshot[key], final[key]))
  );
}

const DOCUMENTS = [
  '{"name": "Ada Lovelace", "born": 1815, "tags": ["math", "poetry"], "alive": false, "spouse": null}',
  '{"escapes": "quote \\" backslash \\\\ slash \\/ tab \\t newline \\n \\u00e9\\u4e2d \\ud83d\\ude00 end"}',
  '{"raw": "héllo 中文 🌍🚀 ok", "nested": {"deep": [[1, [2, [3, {"x": "y"}]]], {}], "empty": []}}',
  '[-0.5, 12, 3e10, -4.25E-3, 0, 1e+2, true, false, null, "", {"a": {"b": {"c": []}}}]',
  '  {\n  "points": [\n    {"x": 1.5, "y": -2},\n    {"x": 100, "y": 2.5e2}\n  ],\n  "title" : "chart"\n}  ',
  '"just a string with \\"escapes\\""',
  '-12345.6789e-2',
];

describe('parsePartialJson', () => {
  test('a whole document is complete and equals JSON.parse', () => {
    for (const text of DOCUMENTS) assert.deepEqual(parsePartialJson(text), { value: JSON.parse(text), state: 'complete' });
  });

  test('every prefix of every document is a snapshot that grows into the whole', () => {
    for (const text of DOCUMENTS) {
      const final = JSON.parse(text);
      for (let end = 0; end < text.length; end++) {
        const { value, state } = parsePartialJson(text.slice(0, end));
        assert.notEqual(state, 'invalid', `prefix ${JSON.stringify(text.slice(0, end))}`);
        if (value !== undefined) assert.ok(growsInto(value, final), `prefix ${JSON.stringify(text.slice(0, end))} → ${JSON.stringify(value)}`);
      }
    }
  });

  test('text arriving in random chunks (seeded): the snapshots only grow, and end at JSON.parse', () => {
    const next = random(17);
    for (let round = 0; round < 300; round++) {
      const text = DOCUMENTS[round % DOCUMENTS.length];
      let received = '';
      let last = undefined;
      for (let i = 0; i < text.length; ) {
        const size = 1 + Math.floor(next() * 9);
        received += text.slice(i, i + size);
        i += size;
        const { value, state } = parsePartialJson(received);
        assert.ok(state === 'partial' || state === 'complete' || state === 'empty', state);
        if (value !== undefined && last !== undefined && typeof last !== 'number') assert.ok(growsInto(last, value), `${JSON.stringify(last)} then ${JSON.stringify(value)}`);
        if (value !== undefined) last = value;
      }
      assert.deepEqual(last, JSON.parse(text));
    }
  });

  test('nothing yet', () => {
    assert.deepEqual(parsePartialJson(''), { value: undefined, state: 'empty' });
    assert.deepEqual(parsePartialJson(' \n\t'), { value: undefined, state: 'empty' });
    assert.deepEqual(parsePartialJson('-'), { value: undefined, state: 'partial' });
  });

  test('open strings, arrays and objects are closed', () => {
    assert.deepEqual(partial('{"a": "x'), { a: 'x' });
    assert.deepEqual(partial('{"a": [1, {"b": [true, {"c": "d'), { a: [1, { b: [true, { c: 'd' }] }] });
    assert.deepEqual(partial('['), []);
    assert.deepEqual(partial('[{'), [{}]);
    assert.deepEqual(partial('"'), '');
  });

  test('a key without its value is dropped', () => {
    for (const text of ['{"a": 1, "b', '{"a": 1, "b"', '{"a": 1, "b":', '{"a": 1, "b": ', '{"a": 1,', '{"a": 1, ']) {
      assert.deepEqual(partial(text), { a: 1 }, text);
    }
    assert.deepEqual(partial('{"a": 1, "b": -'), { a: 1 });
    assert.deepEqual(partial('{"a": 1, "b": ['), { a: 1, b: [] });
    assert.deepEqual(partial('{"a": 1, "b": "'), { a: 1, b: '' });
  });

  test('escapes cut mid-way are left out until they are whole', () => {
    assert.equal(partial('"a\\'), 'a');
    assert.equal(partial('"a\\n'), 'a\n');
    assert.equal(partial('"a\\u'), 'a');
    assert.equal(partial('"a\\u00'), 'a');
    assert.equal(partial('"a\\u00e9'), 'aé');
    assert.equal(partial('"a\\"'), 'a"');
  });

  test('a character cut between its surrogates appears only when whole', () => {
    assert.equal(partial('"x\\ud83d'), 'x');
    assert.equal(partial('"x\\ud83d\\ude'), 'x');
    assert.equal(partial('"x\\ud83d\\ude00'), 'x😀');
    const raw = '"x😀';
    assert.equal(partial(raw.slice(0, raw.length - 1)), 'x'); // the high surrogate alone
    assert.equal(partial(raw), 'x😀');
  });

  test('numbers cut mid-way: as far as they are valid', () => {
    assert.deepEqual(partial('[1'), [1]);
    assert.deepEqual(partial('[12.'), [12]);
    assert.deepEqual(partial('[12.5'), [12.5]);
    assert.deepEqual(partial('[12.5e'), [12.5]);
    assert.deepEqual(partial('[12.5e-'), [12.5]);
    assert.deepEqual(partial('[12.5e-3'), [0.0125]);
    assert.deepEqual(partial('[-'), []);
    assert.deepEqual(partial('{"n": -0.'), { n: -0 });
    assert.deepEqual(parsePartialJson('42'), { value: 42, state: 'complete' });
  });

  test('literals cut mid-way', () => {
    assert.deepEqual(partial('[t'), [true]);
    assert.deepEqual(partial('[tru'), [true]);
    assert.deepEqual(partial('{"x": fa'), { x: false });
    assert.deepEqual(partial('{"x": nul'), { x: null });
  });

  test('text no JSON document starts with is invalid', () => {
    for (const text of [
      'x', '{"a" 1}', '{"a": 1,}', '[1,]', '[1 2]', '{,}', '{1: 2}', '01', '{} x', '"\\x"', '"a\\u12g4"',
      '"tab\there"', '[tx', 'nulL', '-.5', '[1,,2]', '{"a": 1}}',
    ]) {
      assert.deepEqual(parsePartialJson(text), { value: undefined, state: 'invalid' }, text);
    }
  });

  test('__proto__ is an own property, as with JSON.parse', () => {
    const { value } = parsePartialJson('{"__proto__": {"polluted": true}, "a": 1');
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.deepEqual(Object.keys(value), ['__proto__', 'a']);
    assert.equal(/** @type {any} */ ({}).polluted, undefined);
  });

  test('nesting too deep for the stack is invalid, not a crash', () => {
    assert.equal(parsePartialJson('['.repeat(200_000)).state, 'invalid');
  });
});
