// Test helper: runs a REAL tokenwire gateway (`python -m server.cli serve`) on a free port.
//
//   const gw = await startGateway({ config: { streaming: { idle_timeout_seconds: 0.5 } } });
//   gw.url        http://127.0.0.1:<port>
//   await gw.restart()   kill -9 and start again on the same port (drops every socket)
//   await gw.stop()
//
// The interpreter is $TOKENWIRE_PYTHON, else <repo>/.venv/bin/python. Every process started
// here is killed when the test process exits, whatever happens.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const PYTHON = process.env.TOKENWIRE_PYTHON || join(REPO_ROOT, '.venv/bin/python');
const STARTUP_TIMEOUT_MS = 20_000;

/** Variables that would change which providers the gateway serves, or route its HTTP elsewhere. */
const SCRUBBED = /^(OPENAI_|AZURE_OPENAI_|ANTHROPIC_|GEMINI_|GOOGLE_API_KEY|OLLAMA_|TOKENWIRE_|HTTPS?_PROXY$|ALL_PROXY$|NO_PROXY$)/i;

const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolvePort(port));
    });
  });
}

/** A TOML document from nested plain objects (strings, numbers, booleans, arrays of those). */
export function toToml(config, prefix = '') {
  const lines = [];
  const tables = [];
  for (const [key, value] of Object.entries(config)) {
    if (value && typeof value === 'object' && !Array.isArray(value)) tables.push([key, value]);
    else lines.push(`${key} = ${JSON.stringify(value)}`);
  }
  let out = lines.length && prefix ? `[${prefix}]\n${lines.join('\n')}\n` : lines.join('\n');
  for (const [key, value] of tables) out += `\n${toToml(value, prefix ? `${prefix}.${key}` : key)}`;
  return out;
}

export class Gateway {
  /** @param {{port: number, configPath: string, env: NodeJS.ProcessEnv, dir: string}} init */
  constructor(init) {
    this.port = init.port;
    this.configPath = init.configPath;
    this.env = init.env;
    this.dir = init.dir;
    this.url = `http://127.0.0.1:${this.port}`;
    this.wsUrl = `ws://127.0.0.1:${this.port}/v1/ws`;
    /** @type {import('node:child_process').ChildProcess | null} */
    this.child = null;
    this.output = '';
  }

  async start() {
    const child = spawn(
      PYTHON,
      ['-m', 'server.cli', 'serve', '--host', '127.0.0.1', '--port', String(this.port), '--config', this.configPath],
      { cwd: REPO_ROOT, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.add(child);
    this.child = child;
    const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
    child.on('exit', () => children.delete(child));
    child.stdout.on('data', (d) => (this.output += d));
    child.stderr.on('data', (d) => (this.output += d));
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    let gone = false;
    exited.then(() => (gone = true));
    while (Date.now() < deadline) {
      if (gone) throw new Error(`the gateway exited during start-up:\n${this.output}`);
      try {
        const response = await fetch(`${this.url}/healthz`);
        if (response.ok) return this;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.kill();
    throw new Error(`the gateway did not answer /healthz within ${STARTUP_TIMEOUT_MS} ms:\n${this.output}`);
  }

  /** Ends the process (SIGKILL drops every connection at once, like a crash). */
  async kill(signal = 'SIGKILL') {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }

  /** Kills the gateway and starts it again on the same port. */
  async restart() {
    await this.kill('SIGKILL');
    await this.start();
  }

  async stop() {
    await this.kill('SIGTERM');
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Starts a gateway. `config` is written as tokenwire.toml; `env` is added to a scrubbed copy of
 * this process's environment (rulebased chunks every 5 ms unless the config says otherwise).
 * @param {{config?: object, env?: Record<string, string>, port?: number}} [options]
 * @returns {Promise<Gateway>}
 */
export async function startGateway({ config = {}, env = {}, port } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'tokenwire-js-'));
  const configPath = join(dir, 'tokenwire.toml');
  const withDefaults = {
    ...config,
    providers: { ...config.providers, rulebased: { chunk_delay_ms: 5, ...config.providers?.rulebased } },
  };
  await writeFile(configPath, toToml(withDefaults));
  const childEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !SCRUBBED.test(key)));
  Object.assign(childEnv, { NO_PROXY: '127.0.0.1,localhost', PYTHONUNBUFFERED: '1' }, env);
  const gateway = new Gateway({ port: port ?? (await freePort()), configPath, env: childEnv, dir });
  return gateway.start();
}
