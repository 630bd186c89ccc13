/**
 * Active health checks: every interval, each upstream is probed (an app server must answer
 * `GET /healthz` with 200, a Web-STOMP node must accept a TCP connection on its port). A
 * failure marks it down, a pass marks it up; passive marking on live traffic happens in the
 * forwarding modules, so a dead upstream is usually out before its next check.
 */
import net from 'node:net';
import { isLocalResourceError, type Upstream, type UpstreamPool } from './upstreams';

/** Resolves when the upstream is healthy; rejects with the reason otherwise. */
export type Probe = (upstream: Upstream, timeoutMs: number) => Promise<void>;

/** A check slower than this counts as failed: on loopback, a healthy server answers in ms. */
const CHECK_TIMEOUT_MS = 2000;

const errorCode = (err: unknown): string => {
  const e = err as { code?: unknown; cause?: { code?: unknown }; name?: unknown; message?: unknown };
  const code = e?.cause?.code ?? e?.code;
  if (typeof code === 'string') return code;
  return e?.name === 'TimeoutError' ? 'ETIMEDOUT' : String(e?.message ?? err);
};

export const httpProbe: Probe = async (upstream, timeoutMs) => {
  let res: Response;
  try {
    res = await fetch(new URL('/healthz', upstream.url), { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new Error(errorCode(err), { cause: err });
  }
  await res.body?.cancel();
  if (res.status !== 200) throw new Error(`GET /healthz answered ${res.status}`);
};

export const tcpProbe: Probe = (upstream, timeoutMs) =>
  new Promise((resolve, reject) => {
    const { hostname, port } = new URL(upstream.url);
    const socket = net.connect({ host: hostname, port: Number(port) });
    const done = (err?: Error): void => {
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    socket.setTimeout(timeoutMs, () => done(new Error('ETIMEDOUT')));
    socket.once('connect', () => done());
    socket.once('error', (err) => done(new Error(errorCode(err))));
  });

export interface CheckedPool {
  pool: UpstreamPool;
  probe: Probe;
}

export class HealthChecker {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly pools: readonly CheckedPool[],
    private readonly intervalMs: number,
  ) {}

  /** Checks at once, then every interval, measured from the end of the previous round. */
  start(): void {
    this.round();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private round(): void {
    this.running = Promise.all(this.pools.flatMap(({ pool, probe }) => pool.list.map((u) => this.check(pool, probe, u)))).then(() => {
      this.running = null;
      if (!this.stopped) this.timer = setTimeout(() => this.round(), this.intervalMs);
    });
  }

  private async check(pool: UpstreamPool, probe: Probe, upstream: Upstream): Promise<void> {
    try {
      await probe(upstream, CHECK_TIMEOUT_MS);
      pool.mark(upstream, 'up', 'health check passed');
    } catch (err) {
      const reason = (err as Error).message;
      // A probe the proxy could not even open says nothing about the upstream: keep its state.
      if (!isLocalResourceError(reason)) pool.mark(upstream, 'down', `health check: ${reason}`);
    }
  }
}
