/**
 * The properties of an existing queue, read from RabbitMQ's management API, so broker-auth
 * can refuse to let a browser consume a queue that is durable, survives its consumers or
 * carries arguments. RabbitMQ's auth backend is never told these when a queue is declared; by
 * the time the consume is authorized the queue exists and the management API shows it.
 */
import type { Config } from '../../../runtime/config';
import { ManagementApi, managementUrls } from '../broker/management-api';

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
  private readonly api: ManagementApi;

  constructor(config: Config) {
    this.api = new ManagementApi(managementUrls(config), config.rabbitmq, REQUEST_TIMEOUT_MS);
  }

  /** The queue's shape, or null when no such queue exists. */
  async get(queue: string): Promise<QueueShape | null> {
    let answer: { status: number; body: unknown };
    try {
      answer = await this.api.request('GET', `/api/queues/${VHOST}/${encodeURIComponent(queue)}?disable_stats=true`, { done: [404] });
    } catch (err) {
      throw new QueueShapeUnavailableError(`no management endpoint answered for queue ${queue}`, { cause: err });
    }
    if (answer.status === 404) return null;
    const q = (answer.body ?? {}) as { durable?: unknown; auto_delete?: unknown; exclusive?: unknown; arguments?: unknown };
    return { durable: q.durable === true, autoDelete: q.auto_delete === true, exclusive: q.exclusive === true, arguments: argumentsOf(q.arguments) };
  }
}
