/** The HTTP front as an actor: listen on start(), stop accepting and drain on close(). */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';

/** Owns the http.Server that serves the Express app. */
export class HttpFront {
  readonly #server: Server;
  readonly #host: string;
  readonly #port: number;
  #closing: Promise<void> | undefined;

  constructor(app: express.Express, host: string, port: number) {
    this.#server = createServer(app);
    // Long tool calls hold a request open for minutes; only the client's own patience should end them.
    this.#server.requestTimeout = 0;
    this.#host = host;
    this.#port = port;
  }

  /** Listens; resolves with the bound address. */
  start(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#port, this.#host, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting connections at once; the returned promise settles when open requests were answered. */
  stopAccepting(): void {
    this.#closing ??= new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
  }

  /** Waits for open requests (or cuts them with `force`), then releases the port. */
  async close(opts: { force?: boolean } = {}): Promise<void> {
    this.stopAccepting();
    if (opts.force) this.#server.closeAllConnections();
    else {
      // Keep-alive sockets that become idle after their last answer are closed as they go idle.
      const sweep = setInterval(() => this.#server.closeIdleConnections(), 100);
      try {
        await this.#closing;
      } finally {
        clearInterval(sweep);
      }
    }
    await this.#closing;
  }
}
