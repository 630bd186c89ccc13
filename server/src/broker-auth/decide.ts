/**
 * RabbitMQ's questions about browser users, answered. This is the broker-enforced room policy:
 *
 * - login: the passcode must be a live broker token of that user (session not revoked);
 * - a learner may bind only `room.<R>.all` and `room.<R>.user.<self>` of rooms it belongs to;
 * - an instructor may also consume its own instructor queue `rc.iq.<R>.<self>`;
 * - no browser user may publish anywhere or configure any queue but STOMP's own temporary
 *   subscription queues. Only the server's broker user (internal backend) publishes;
 * - a subscription queue (`stomp-subscription-…`, a name the client can also choose) belongs
 *   to the first user who declares it (a name whose queue exists cannot be claimed anew);
 *   only that user may bind it, and it may have two consumers over its life (a page's two
 *   topic subscriptions share it), and only if it dies with its consumers: not durable,
 *   auto-delete (or exclusive), no `x-*` arguments. So no queue a browser reads outlives its
 *   owner's connections or can be reopened by anyone else (docs/decisions/0007-browser-queues.md).
 */
import type { Role } from '../../../shared/protocol/messages';
import {
  CONSUMERS_PER_SUBSCRIPTION_QUEUE,
  ROOM_EXCHANGE,
  SUBSCRIPTION_QUEUE_PREFIX,
  isUuid,
  parseInstructorQueue,
  parseRoomKey,
} from '../../../shared/protocol/routing';
import type { QueueShape } from './queue-shape';

export interface AuthLookups {
  checkBrokerToken(userId: string, passcode: string): Promise<boolean>;
  roleOf(roomId: string, userId: string): Promise<Role | null>;
  /** Claims a subscription queue name for `userId` unless someone holds it; returns the holder and whether this call claimed it. */
  claimQueue(queue: string, userId: string): Promise<{ owner: string; fresh: boolean }>;
  /** Undoes a claim this user just made. */
  releaseQueue(queue: string, userId: string): Promise<void>;
  queueOwner(queue: string): Promise<string | null>;
  /** Counts a consume of `queue`: how many have been asked for, this one included. */
  countConsume(queue: string): Promise<number>;
  /** The existing queue's properties; null when it does not exist. */
  queueShape(queue: string): Promise<QueueShape | null>;
}

/** The decision and a short reason, kept for logs and metrics. */
export interface Decision {
  allow: boolean;
  reason: string;
}

const allow = (reason: string): Decision => ({ allow: true, reason });
const deny = (reason: string): Decision => ({ allow: false, reason });

const VHOST = '/';

export async function decideUser(q: { username?: string; password?: string }, l: AuthLookups): Promise<Decision> {
  if (!q.username || !isUuid(q.username) || !q.password) return deny('malformed login');
  return (await l.checkBrokerToken(q.username, q.password)) ? allow('token') : deny('token invalid, expired or revoked');
}

export function decideVhost(q: { username?: string; vhost?: string }): Decision {
  return q.username && isUuid(q.username) && q.vhost === VHOST ? allow('vhost') : deny('vhost');
}

export async function decideResource(
  q: { username?: string; vhost?: string; resource?: string; name?: string; permission?: string },
  l: AuthLookups,
): Promise<Decision> {
  const { username, resource, name = '', permission } = q;
  if (!username || q.vhost !== VHOST) return deny('vhost');
  if (resource === 'exchange') {
    // Reading the exchange is what binding a subscription queue to it takes; routing keys are checked by decideTopic.
    return name === ROOM_EXCHANGE && permission === 'read' ? allow('bind to room exchange') : deny(`exchange ${permission}`);
  }
  if (resource === 'queue') {
    if (name.startsWith(SUBSCRIPTION_QUEUE_PREFIX)) return decideSubscriptionQueue(username, name, permission, l);
    const iq = parseInstructorQueue(name);
    if (iq && permission === 'read' && iq.userId === username) {
      return (await l.roleOf(iq.roomId, username)) === 'instructor' ? allow('own instructor queue') : deny('not instructor');
    }
    return deny(`queue ${permission}`);
  }
  return deny(`resource ${resource ?? '?'}`);
}

/** Why a queue would outlive its consumers, or null when it dies with them. */
export function lingeringShape(q: QueueShape): string | null {
  if (q.durable) return 'durable queue';
  if (!q.autoDelete && !q.exclusive) return 'queue outlives its consumers (auto-delete off)';
  if (Object.keys(q.arguments).length > 0) return `queue arguments ${Object.keys(q.arguments).join(',')}`;
  return null;
}

async function decideSubscriptionQueue(user: string, queue: string, permission: string | undefined, l: AuthLookups): Promise<Decision> {
  // Declaring (and deleting) is configure: the first user to ask owns the name...
  if (permission === 'configure') {
    const claim = await l.claimQueue(queue, user);
    if (claim.owner !== user) return deny("another user's queue name");
    if (!claim.fresh) return allow('own subscription queue');
    // ...unless the queue already exists: its own claim has lapsed (claims are short), so it is
    // someone's live queue, never to be re-opened.
    if ((await l.queueShape(queue)) === null) return allow('new subscription queue');
    await l.releaseQueue(queue, user);
    return deny('queue exists but was not declared by this user');
  }
  if ((await l.queueOwner(queue)) !== user) return deny('subscription queue not declared by this user');
  // Binding: the routing key itself is checked by decideTopic.
  if (permission === 'write') return allow('bind own subscription queue');
  if (permission !== 'read') return deny(`queue ${permission ?? '?'}`);
  const shape = await l.queueShape(queue);
  if (!shape) return deny('no such queue');
  const lingering = lingeringShape(shape);
  if (lingering) return deny(lingering);
  const consumers = await l.countConsume(queue);
  return consumers <= CONSUMERS_PER_SUBSCRIPTION_QUEUE
    ? allow('consume of own subscription queue')
    : deny(`subscription queue consumed ${CONSUMERS_PER_SUBSCRIPTION_QUEUE} times before`);
}

export async function decideTopic(
  q: { username?: string; vhost?: string; name?: string; permission?: string; routing_key?: string },
  l: AuthLookups,
): Promise<Decision> {
  if (!q.username || q.vhost !== VHOST || q.name !== ROOM_EXCHANGE) return deny('topic exchange');
  if (q.permission !== 'read') return deny('browsers never publish');
  const key = parseRoomKey(q.routing_key ?? '');
  if (!key) return deny('not a room key');
  if (key.kind === 'instructor') return deny('instructor key is consumed through the instructor queue');
  if (key.kind === 'user' && key.userId !== q.username) return deny("another member's key");
  return (await l.roleOf(key.roomId, q.username)) ? allow('member') : deny('not a member');
}
