// Serves a built page and proxies /v1 (HTTP and the WebSocket upgrade) to the gateway, so the page
// and the gateway share one origin. Node built-ins only.
//   GATEWAY=http://127.0.0.1:8000 PORT=5173 STATIC_DIR=dist node serve.mjs
// Prints {"url": ...} once listening.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

const gateway = new URL(process.env.GATEWAY ?? 'http://127.0.0.1:8000');
const root = path.resolve(process.env.STATIC_DIR ?? 'dist');
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css' };

function serveFile(req, res) {
  const { pathname } = new URL(req.url, 'http://x');
  const name = pathname === '/' ? 'index.html' : decodeURIComponent(pathname);
  const file = path.join(root, path.normalize(name));
  if (!file.startsWith(root) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
}

function proxy(req, res) {
  const upstream = http.request(
    { host: gateway.hostname, port: gateway.port, path: req.url, method: req.method, headers: { ...req.headers, host: gateway.host } },
    answer => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => res.headersSent ? res.destroy() : res.writeHead(502).end());
  res.on('close', () => upstream.destroy()); // a stopped fetch drops the gateway's connection too
  req.pipe(upstream);
}

const server = http.createServer((req, res) => (req.url.startsWith('/v1/') ? proxy(req, res) : serveFile(req, res)));

// The WebSocket upgrade: replay the request head to the gateway, then splice the two sockets.
server.on('upgrade', (req, socket, head) => {
  const upstream = net.connect(Number(gateway.port), gateway.hostname, () => {
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const [name, value] = [req.rawHeaders[i], req.rawHeaders[i + 1]];
      lines.push(`${name}: ${name.toLowerCase() === 'host' ? gateway.host : value}`);
    }
    upstream.write(lines.join('\r\n') + '\r\n\r\n');
    upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  const close = () => { upstream.destroy(); socket.destroy(); };
  upstream.on('error', close);
  socket.on('error', close);
  upstream.on('close', close);
  socket.on('close', close);
});

server.listen(Number(process.env.PORT ?? 5173), '127.0.0.1', () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}/` }));
});
