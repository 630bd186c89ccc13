/**
 * The properties of an existing queue, read from RabbitMQ's management API, so broker-auth
 * can refuse to let a browser consume a queue that is durable, survives its consumers or
 * carries arguments. RabbitMQ's auth backend is never told these when a queue is declared; by
 * the time the consume is authorized the queue exists and the management API shows it.
 */
import type { Config } from '../../../shared/config';

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

  constructor(config: Config) {
    this.endpoints = config.rabbitmq.nodes.map((n) => `http://127.0.0.1:${n.managementPort}`);
    this.authorization = `Basic ${Buffer.from(`${config.rabbitmq.user}:${config.rabbitmq.password}`).toString('base64')}`;
  }

  /** The queue's shape, or null when no such queue exists. Tries each node once, starting at a rotating one. */
  async get(queue: string): Promise<QueueShape | null> {
    const start = this.next++ % this.endpoints.length;
    let lastError: unknown;
    for (let i = 0; i < this.endpoints.length; i++) {
      const endpoint = this.endpoints[(start + i) % this.endpoints.length];
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
        lastError = err;
      }
    }
    throw new QueueShapeUnavailableError(`no management endpoint answered for queue ${queue}`, { cause: lastError });
  }
}
