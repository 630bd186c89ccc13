/**
 * RabbitMQ's management HTTP API, as the server's broker user. Any node answers for the whole
 * cluster, so nodes are asked in turn, from a rotating start and with those that failed in the
 * last few seconds last: during a failover one of them is usually down. Used by broker-auth (a
 * queue's shape) and by revocation (closing a user's connections).
 */
import type { Config } from '../../../runtime/config';

/** No node answered, or the broker refused the server's own user. */
export class ManagementApiError extends Error {
  override name = 'ManagementApiError';
  readonly code = 'management_api_failed';
}

/** A node whose API just failed is asked last for this long (it is likely down). */
const FAILED_NODE_BACKOFF_MS = 5000;

/** Management API base URLs of every node, in node order. */
export function managementUrls(config: Config): string[] {
  return config.rabbitmq.nodes.map((n) => `http://${n.host}:${n.managementPort}`);
}

export class ManagementApi {
  private readonly authorization: string;
  private readonly failedAt: number[];
  private next = 0;

  constructor(
    private readonly urls: string[],
    credentials: { user: string; password: string },
    private readonly timeoutMs: number,
  ) {
    this.authorization = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`;
    this.failedAt = urls.map(() => 0);
  }

  /**
   * The first answer that is a success or one of `done` (statuses that settle the question, such
   * as a 404), with its JSON body (null when empty). A 401 or 403 ends the search: every node
   * shares the user, so it is a configuration problem. Throws when no node answers.
   */
  async request(method: string, path: string, options: { headers?: Record<string, string>; done?: number[] } = {}): Promise<{ status: number; body: unknown }> {
    const failures: string[] = [];
    for (const i of this.order()) {
      const base = this.urls[i] as string;
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers: { authorization: this.authorization, ...options.headers },
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (err) {
        this.failedAt[i] = Date.now();
        failures.push(`${base}: ${(err as Error).message}`);
        continue;
      }
      const text = await res.text();
      if (res.ok || options.done?.includes(res.status)) return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
      if (res.status === 401 || res.status === 403) {
        throw new ManagementApiError(`${method} ${path}: ${res.status} ${text.slice(0, 200)} (check the broker user's password and tags)`);
      }
      this.failedAt[i] = Date.now();
      failures.push(`${base}: ${res.status} ${text.slice(0, 200)}`);
    }
    throw new ManagementApiError(`${method} ${path} failed on every node: ${failures.join('; ')}`);
  }

  /** Every node once, from a rotating start, the ones that failed lately at the end. */
  private order(): number[] {
    const start = this.next++ % this.urls.length;
    const all = this.urls.map((_, i) => (start + i) % this.urls.length);
    const recent = (i: number): boolean => Date.now() - (this.failedAt[i] ?? 0) < FAILED_NODE_BACKOFF_MS;
    return [...all.filter((i) => !recent(i)), ...all.filter(recent)];
  }
}
