// Test helper: a TCP proxy between a client and a gateway that can cut the connections, to
// rehearse a network drop without touching the gateway (its streams keep running).
//
//   const proxy = await startProxy(gw.port);
//   proxy.url            http://127.0.0.1:<port>: give it to the client instead of gw.url
//   proxy.drop()         destroys every open connection, both sides (the client sees a reset)
//   proxy.refuse(true)   new connections are closed at once (the gateway is "unreachable")
//   proxy.accepted       connections accepted so far
//   await proxy.close()
import { createConnection, createServer } from 'node:net';

/**
 * @param {number} targetPort the gateway's port on 127.0.0.1
 */
export async function startProxy(targetPort) {
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set();
  let refusing = false;
  let accepted = 0;
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    accepted += 1;
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {}); // a reset is what this proxy is for
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    /** How many client and gateway sockets are open. */
    get open() {
      return sockets.size;
    },
    drop() {
      for (const socket of [...sockets]) socket.resetAndDestroy();
    },
    /** @param {boolean} on */
    refuse(on) {
      refusing = on;
    },
    async close() {
      this.drop();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}
