/**
 * A TCP proxy on 127.0.0.1 (port 0) in front of one upstream port, for outage tests: it forwards, refuses (closes
 * every connection, new and open), or blackholes (keeps connections open and stops moving bytes either way, as a
 * half-open connection or a dropped route does). `blackholeAfter(n)` switches to blackhole in the middle of a
 * transfer, after n more bytes went upstream, so a test can cut an upload short at a known point.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

/** What the proxy does with connections. */
export type ProxyMode = 'forward' | 'refuse' | 'blackhole';

/** A running proxy. */
export interface TcpProxy {
  /** The port it listens on (127.0.0.1). */
  port: number;
  /** Switches mode: `refuse` closes open connections too; `blackhole` freezes them. */
  setMode(mode: ProxyMode): void;
  /** The mode in effect. */
  mode(): ProxyMode;
  /** Forwards until `bytes` more bytes went upstream, then blackholes; resolves when it switched. */
  blackholeAfter(bytes: number): Promise<void>;
  /** Closes every connection and the listener. */
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  frozen: boolean;
}

/** Starts a proxy to `127.0.0.1:<upstreamPort>` in mode `initial`. */
export async function startTcpProxy(upstreamPort: number, initial: ProxyMode = 'forward'): Promise<TcpProxy> {
  let mode: ProxyMode = initial;
  const pairs = new Set<Pair>();
  const sockets = new Set<Socket>();
  let trip: { left: number; done: () => void } | undefined;

  const freeze = (p: Pair): void => {
    p.frozen = true;
    p.client.pause();
    p.upstream.pause();
  };
  const blackhole = (): void => {
    mode = 'blackhole';
    for (const p of pairs) freeze(p);
    const t = trip;
    trip = undefined;
    t?.done();
  };
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
  };

  const server: Server = createServer((client) => {
    track(client);
    if (mode === 'refuse') {
      client.destroy();
      return;
    }
    if (mode === 'blackhole') {
      // Accepted, never answered: the caller's request goes nowhere.
      client.pause();
      return;
    }
    const upstream = connect(upstreamPort, '127.0.0.1');
    track(upstream);
    const pair: Pair = { client, upstream, frozen: false };
    pairs.add(pair);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.once('close', end);
    upstream.once('close', end);
    client.on('data', (chunk: Buffer) => {
      if (pair.frozen) return;
      if (trip) {
        trip.left -= chunk.length;
        if (trip.left <= 0) {
          // This chunk goes nowhere either: the cut falls inside the transfer.
          blackhole();
          return;
        }
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.frozen) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  return {
    port,
    mode: () => mode,
    setMode(next) {
      trip = undefined;
      if (next === 'blackhole') {
        blackhole();
        return;
      }
      mode = next;
      if (next === 'refuse') for (const s of sockets) s.destroy();
    },
    blackholeAfter(bytes) {
      mode = 'forward';
      return new Promise<void>((resolve) => {
        trip = { left: bytes, done: resolve };
      });
    },
    async close() {
      trip = undefined;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
