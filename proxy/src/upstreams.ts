/**
 * The servers the proxy forwards to, each with an explicit state. App servers are picked round
 * robin (their requests are short and alike); Web-STOMP nodes by fewest open connections,
 * because WebSockets live for hours and a node that just rejoined must catch up.
 */
import { EventEmitter } from 'node:events';

export type UpstreamKind = 'app' | 'web-stomp';

/**
 * Errors that say the proxy itself ran out of something (file descriptors, memory, local
 * ports), not that the upstream failed: marking the upstream down for them would close every
 * WebSocket it carries, for nothing.
 */
const LOCAL_RESOURCE_ERRORS = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL']);
export const isLocalResourceError = (code: string): boolean => LOCAL_RESOURCE_ERRORS.has(code);

/** `up` takes new connections; `down` takes none until its health check passes again. */
export type UpstreamState = 'up' | 'down';

export interface Upstream {
  readonly kind: UpstreamKind;
  /** `http://127.0.0.1:3000` for an app server, `ws://127.0.0.1:25680/ws` for a Web-STOMP node. */
  readonly url: string;
  /** host:port, the label in logs and metrics. */
  readonly name: string;
  state: UpstreamState;
  /** Connections handed to it and not yet closed (WebSockets, including those mid-handshake). */
  open: number;
  /** Why it was last marked down; null while it has never failed. */
  lastError: string | null;
}

/** A copy of an upstream's state, for tests and the admin port. */
export type UpstreamSnapshot = Readonly<Pick<Upstream, 'kind' | 'url' | 'name' | 'state' | 'open' | 'lastError'>>;

interface PoolEvents {
  /** The upstream moved to `state`; `reason` says why (a failed check, an error code). */
  change: [upstream: Upstream, state: UpstreamState, reason: string];
}

export class UpstreamPool extends EventEmitter<PoolEvents> {
  readonly list: readonly Upstream[];
  private next = 0;

  constructor(
    readonly kind: UpstreamKind,
    urls: readonly string[],
  ) {
    super();
    this.list = urls.map((url) => ({ kind, url, name: new URL(url).host, state: 'up', open: 0, lastError: null }));
  }

  /** The next healthy upstream after the previous pick, skipping `exclude` (a retry's first try). */
  pickRoundRobin(exclude?: Upstream): Upstream | null {
    for (let i = 0; i < this.list.length; i++) {
      const u = this.list[(this.next + i) % this.list.length];
      if (u && u.state === 'up' && u !== exclude) {
        this.next = (this.next + i + 1) % this.list.length;
        return u;
      }
    }
    return null;
  }

  /** The healthy upstream with the fewest open connections; ties rotate so a burst spreads evenly. */
  pickLeastOpen(): Upstream | null {
    let best: Upstream | null = null;
    for (let i = 0; i < this.list.length; i++) {
      const u = this.list[(this.next + i) % this.list.length];
      if (u && u.state === 'up' && (best === null || u.open < best.open)) best = u;
    }
    if (best) this.next = (this.list.indexOf(best) + 1) % this.list.length;
    return best;
  }

  mark(upstream: Upstream, state: UpstreamState, reason: string): void {
    if (state === 'down') upstream.lastError = reason;
    if (upstream.state === state) return;
    upstream.state = state;
    this.emit('change', upstream, state, reason);
  }

  snapshot(): UpstreamSnapshot[] {
    return this.list.map(({ kind, url, name, state, open, lastError }) => ({ kind, url, name, state, open, lastError }));
  }
}
