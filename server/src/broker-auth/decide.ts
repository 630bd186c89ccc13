/**
 * RabbitMQ's questions about browser users, answered. This is the broker-enforced room policy:
 *
 * - login: the passcode must be a live broker token of that user (session not revoked);
 * - a learner may bind only `room.<R>.all` and `room.<R>.user.<self>` of rooms it belongs to;
 * - an instructor may also consume its own instructor queue `rc.iq.<R>.<self>`;
 * - no browser user may publish anywhere or configure any queue but STOMP's own temporary
 *   subscription queues. Only the server's broker user (internal backend) publishes.
 */
import type { Role } from '../../../shared/protocol/messages';
import { ROOM_EXCHANGE, isUuid, parseInstructorQueue, parseRoomKey } from '../../../shared/protocol/routing';

export interface AuthLookups {
  checkBrokerToken(userId: string, passcode: string): Promise<boolean>;
  roleOf(roomId: string, userId: string): Promise<Role | null>;
}

/** The decision and a short reason, kept for logs and metrics. */
export interface Decision {
  allow: boolean;
  reason: string;
}

const allow = (reason: string): Decision => ({ allow: true, reason });
const deny = (reason: string): Decision => ({ allow: false, reason });

/** STOMP names the temporary queue of each topic subscription with this prefix. */
const STOMP_SUBSCRIPTION_QUEUE = 'stomp-subscription-';
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
    if (name.startsWith(STOMP_SUBSCRIPTION_QUEUE)) return allow('own subscription queue');
    const iq = parseInstructorQueue(name);
    if (iq && permission === 'read' && iq.userId === username) {
      return (await l.roleOf(iq.roomId, username)) === 'instructor' ? allow('own instructor queue') : deny('not instructor');
    }
    return deny(`queue ${permission}`);
  }
  return deny(`resource ${resource ?? '?'}`);
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
