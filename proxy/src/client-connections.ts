/**
 * Every TCP connection on the public TLS port: counted per client address (for the limit),
 * metered (bytes on the wire, TLS included) and kept, so shutdown can cut whatever is still
 * open once its grace period is over.
 */
import type net from 'node:net';
import type { ProxyMetrics } from './metrics';

/** The client's address as logged and limited: IPv4-mapped IPv6 addresses in their IPv4 form. */
export const clientAddress = (socket: net.Socket): string => (socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');

// A connection is named by its peer address and port: the TLS socket a request arrives on is a
// different object from the TCP socket counted here, but shares both.
const connectionKey = (socket: net.Socket): string => `${socket.remoteAddress}|${socket.remotePort}`;

interface Metered {
  read: number;
  written: number;
}

export class ClientConnections {
  private readonly perAddress = new Map<string, number>();
  /** Connections that arrived while their address was at the limit: answered 429, then closed. */
  private readonly overLimit = new Set<string>();
  private readonly live = new Map<net.Socket, Metered>();

  constructor(
    /** Read per connection: the default follows the open-file limit (see descriptor-budget.ts). */
    private readonly maxPerAddress: () => number,
    private readonly metrics: ProxyMetrics,
  ) {}

  /** For the TLS server's 'connection' event, before the handshake. */
  add(socket: net.Socket): void {
    const address = clientAddress(socket);
    const key = connectionKey(socket);
    const count = (this.perAddress.get(address) ?? 0) + 1;
    this.perAddress.set(address, count);
    // Over the limit, the connection is still accepted so that it gets a 429 it can read,
    // rather than a reset the client would retry at once.
    if (count > this.maxPerAddress()) this.overLimit.add(key);
    const metered: Metered = { read: 0, written: 0 };
    this.live.set(socket, metered);
    socket.once('close', () => {
      this.meter(socket, metered);
      this.live.delete(socket);
      this.overLimit.delete(key);
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
    });
  }

  /** Whether the connection this (TLS) socket belongs to arrived over its address's limit. */
  isOverLimit(socket: net.Socket): boolean {
    return this.overLimit.has(connectionKey(socket));
  }

  /** Adds the traffic since the last call to the byte counters (run before each scrape). */
  collectBytes(): void {
    for (const [socket, metered] of this.live) this.meter(socket, metered);
  }

  /** Shutdown's last step: cuts every connection still open. */
  destroyAll(): void {
    for (const socket of this.live.keys()) socket.destroy();
  }

  get size(): number {
    return this.live.size;
  }

  private meter(socket: net.Socket, metered: Metered): void {
    const read = socket.bytesRead;
    const written = socket.bytesWritten;
    if (read > metered.read) this.metrics.bytes.inc({ direction: 'in' }, read - metered.read);
    if (written > metered.written) this.metrics.bytes.inc({ direction: 'out' }, written - metered.written);
    metered.read = read;
    metered.written = written;
  }
}
