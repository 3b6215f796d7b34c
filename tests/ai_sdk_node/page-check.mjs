// Drives headless Chromium over the DevTools protocol (Node 22's built-in WebSocket; no browser
// download) through the useChat page of page/app.jsx, and prints what it saw as one JSON object
// for tests/e2e/test_ai_sdk_page.py to check. Env: PAGE_URL (the page's origin, ending in /),
// GATEWAY (for /metrics), TOKEN, CHROMIUM (the browser binary), PROFILE (an empty directory for the
// browser's profile, left for the caller to remove: the browser's helpers may still write to it).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const { PAGE_URL, GATEWAY, TOKEN, CHROMIUM, PROFILE } = process.env;
const WAIT_MS = 20_000; // an upper bound on each wait below, never a pace: each polls a condition
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function until(probe, ok) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await sleep(25);
  }
}

async function launch(profile) {
  const chrome = spawn(CHROMIUM, [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--remote-debugging-port=0',
    'about:blank',
  ], { stdio: 'ignore', detached: true }); // its own process group: stopped with all its helpers
  const portFile = path.join(profile, 'DevToolsActivePort');
  const port = await until(() => fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').split('\n')[0], Boolean);
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  return { chrome, debuggerUrl: targets.find(t => t.type === 'page').webSocketDebuggerUrl };
}

function devtools(url) {
  const socket = new WebSocket(url);
  const pending = new Map();
  const events = [];
  let nextId = 0;
  socket.onmessage = e => {
    const m = JSON.parse(e.data);
    if (m.id && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); }
    else if (m.method) events.push(m);
  };
  const call = (method, params = {}) => new Promise(resolve => {
    const id = ++nextId;
    pending.set(id, resolve);
    socket.send(JSON.stringify({ id, method, params }));
  });
  const evaluate = async expression =>
    (await call('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })).result?.result?.value;
  const opened = new Promise(resolve => (socket.onopen = resolve));
  return { opened, call, evaluate, events, close: () => socket.close() };
}

const panels = cdp => async () => Object.fromEntries((await cdp.evaluate(`[...document.querySelectorAll('section')].map(s => [
  s.dataset.chat, { status: s.dataset.status, messages: Number(s.dataset.messages), assistant: Number(s.dataset.assistant),
  text: s.querySelector('.text').textContent, error: s.querySelector('.error')?.textContent ?? null }])`)) ?? []);

async function cancelledStreams() {
  const text = await (await fetch(`${GATEWAY}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  const line = text.split('\n').find(l => l.startsWith('tokenwire_streams_total{') && l.includes('outcome="cancelled"') && l.includes('provider="rulebased"'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

const { chrome, debuggerUrl } = await launch(PROFILE);
const cdp = devtools(debuggerUrl);
const out = {};
try {
  await cdp.opened;
  for (const domain of ['Runtime', 'Page', 'Network']) await cdp.call(`${domain}.enable`);
  const snapshot = panels(cdp);
  const url = phase => `${PAGE_URL}?phase=${phase}&token=${encodeURIComponent(TOKEN)}`;

  // phase 1: stop w-2 once its first words arrived (its stream then stalls upstream until cancelled)
  await cdp.call('Page.navigate', { url: url(1) });
  out.beforeStop = await until(snapshot, p => p['w-2']?.text);
  await cdp.evaluate(`window.__stop['w-2']()`);
  out.cancelledAfterStop = await until(cancelledStreams, n => n >= 1);
  out.phase1 = await until(snapshot, p => ['w-1', 'w-2', 'h-1'].every(id => p[id]?.status === 'ready' && p[id].messages === 2));
  out.finished1 = await cdp.evaluate('window.__finished');
  out.webSockets = cdp.events.filter(e => e.method === 'Network.webSocketCreated').map(e => e.params.url);

  // phase 2: reload while w-3 still waits for its first token; useChat({ resume: true }) picks it up
  await cdp.call('Page.navigate', { url: url(2) });
  out.phase2 = await until(snapshot, p => p['w-3']?.status === 'ready' && p['w-3'].assistant === 1);
  out.finished2 = await cdp.evaluate('window.__finished');
  out.exceptions = cdp.events.filter(e => e.method === 'Runtime.exceptionThrown').map(e => e.params.exceptionDetails.text);
} finally {
  cdp.close();
  const exited = new Promise(resolve => chrome.once('exit', resolve));
  process.kill(-chrome.pid);
  await exited;
}
console.log(JSON.stringify(out));
