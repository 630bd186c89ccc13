/**
 * The properties of an existing queue, read from RabbitMQ's management API, so broker-auth
 * can refuse to let a browser consume a queue that is durable, survives its consumers or
 * carries arguments. RabbitMQ's auth backend is never told these when a queue is declared; by
 * the time the consume is authorized the queue exists and the management API shows it.
 */
import type { Config } from '../../../runtime/config';

export interface QueueShape {
  durable: boolean;
  autoDelete: boolean;
  exclusive: boolean;
  /** The `x-*` arguments the declaring client set (policies are not listed here). */
  arguments: Record<string, unknown>;
}

/** No management endpoint answered; broker-auth denies (fails closed). */
export class QueueShapeUnavailableError extends Error {
  override name = 'QueueShapeUnavailableError';
  readonly code = 'queue_shape_unavailable';
}

const REQUEST_TIMEOUT_MS = 2000;
/** A node whose management API just failed is asked last for this long (it is likely down). */
const FAILED_NODE_BACKOFF_MS = 5000;
const VHOST = '%2F';

/** An empty argument table may come as `{}` or `[]`; anything unexpected counts as arguments (fail closed). */
function argumentsOf(raw: unknown): Record<string, unknown> {
  if (Array.isArray(raw)) return raw.length === 0 ? {} : { unparsed: raw };
  if (typeof raw === 'object' && raw !== null) return raw as Record<string, unknown>;
  return raw === undefined ? {} : { unparsed: raw };
}

export class QueueShapeLookup {
  private readonly endpoints: string[];
  private readonly authorization: string;
  private next = 0;
  private readonly failedAt: number[];

  constructor(config: Config) {
    this.endpoints = config.rabbitmq.nodes.map((n) => `http://127.0.0.1:${n.managementPort}`);
    this.authorization = `Basic ${Buffer.from(`${config.rabbitmq.user}:${config.rabbitmq.password}`).toString('base64')}`;
    this.failedAt = this.endpoints.map(() => 0);
  }

  /** Every node once, from a rotating start, the ones that failed lately at the end. */
  private order(): number[] {
    const start = this.next++ % this.endpoints.length;
    const all = this.endpoints.map((_, i) => (start + i) % this.endpoints.length);
    const recent = (i: number): boolean => Date.now() - (this.failedAt[i] ?? 0) < FAILED_NODE_BACKOFF_MS;
    return [...all.filter((i) => !recent(i)), ...all.filter(recent)];
  }

  /** The queue's shape, or null when no such queue exists. Tries each node once. */
  async get(queue: string): Promise<QueueShape | null> {
    let lastError: unknown;
    for (const i of this.order()) {
      const endpoint = this.endpoints[i];
      try {
        const res = await fetch(`${endpoint}/api/queues/${VHOST}/${encodeURIComponent(queue)}?disable_stats=true`, {
          headers: { authorization: this.authorization },
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        if (res.status === 404) return null;
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const q = (await res.json()) as { durable?: unknown; auto_delete?: unknown; exclusive?: unknown; arguments?: unknown };
        return {
          durable: q.durable === true,
          autoDelete: q.auto_delete === true,
          exclusive: q.exclusive === true,
          arguments: argumentsOf(q.arguments),
        };
      } catch (err) {
        // A node that is down (or its management listener) is normal during failover: ask the next.
        this.failedAt[i] = Date.now();
        lastError = err;
      }
    }
    throw new QueueShapeUnavailableError(`no management endpoint answered for queue ${queue}`, { cause: lastError });
  }
}
