/**
 * Routing keys, queue names and STOMP destinations: the one definition used by the app server
 * (publishing, declaring, authorizing) and the browser client (subscribing).
 *
 * Keys are dot-separated words on `amq.topic`:
 *   room.<roomId>.all            every member of the room
 *   room.<roomId>.instructor     the room's instructors
 *   room.<roomId>.user.<userId>  one member
 */

/** The exchange every room message is published to. */
export const ROOM_EXCHANGE = 'amq.topic';

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const UUID_RE = new RegExp(`^${UUID}$`);

export const isUuid = (s: string): boolean => UUID_RE.test(s);

export const roomAllKey = (roomId: string): string => `room.${roomId}.all`;
export const roomInstructorKey = (roomId: string): string => `room.${roomId}.instructor`;
export const roomUserKey = (roomId: string, userId: string): string => `room.${roomId}.user.${userId}`;
/** The routing key a message is published with, from its audience. */
export function routingKeyOf(m: { roomId: string; audience: 'everyone' | 'instructors' | 'member'; recipientId: string | null }): string {
  switch (m.audience) {
    case 'everyone':
      return roomAllKey(m.roomId);
    case 'instructors':
      return roomInstructorKey(m.roomId);
    case 'member':
      return roomUserKey(m.roomId, m.recipientId as string);
  }
}

/** Binding of an instructor queue: every key of the room. */
export const roomWildcardKey = (roomId: string): string => `room.${roomId}.#`;

/** The durable quorum queue that keeps a room's messages for one instructor. */
export const instructorQueueName = (roomId: string, userId: string): string => `rc.iq.${roomId}.${userId}`;

/** STOMP's prefix for the temporary queue of a topic subscription; broker-auth gives each such name one owner. */
export const SUBSCRIPTION_QUEUE_PREFIX = 'stomp-subscription-';
/**
 * A page puts its topic subscriptions (the room's key and its own) on one queue it names
 * (`x-queue-name`): one queue, one claim and one set of checks per page instead of one per
 * key. The name is STOMP's prefix and 128 random bits, so no one else can guess it.
 */
export const PAGE_QUEUE_NAME = new RegExp(`^${SUBSCRIPTION_QUEUE_PREFIX}[A-Za-z0-9_-]{22}$`);
/** Consumers a subscription queue may have over its life: the page's two topic subscriptions. */
export const CONSUMERS_PER_SUBSCRIPTION_QUEUE = 2;

/** A fresh page queue name (Web Crypto: the same code runs in the page and in Node). */
export function newPageQueueName(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  const base64 = btoa(String.fromCharCode(...bytes));
  return `${SUBSCRIPTION_QUEUE_PREFIX}${base64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}`;
}

/** STOMP destination of a routing key on the room exchange (a temporary queue per subscription). */
export const exchangeDestination = (routingKey: string): string => `/exchange/${ROOM_EXCHANGE}/${routingKey}`;
/** STOMP destination of an existing queue: consumes it without declaring it. */
export const queueDestination = (queueName: string): string => `/amq/queue/${queueName}`;

/** A routing key a subscriber may bind, parsed; anything else (wildcards included) is null. */
export type ParsedRoomKey =
  | { kind: 'all'; roomId: string }
  | { kind: 'instructor'; roomId: string }
  | { kind: 'user'; roomId: string; userId: string };

const ROOM_KEY_RE = new RegExp(`^room\\.(${UUID})\\.(?:(all)|(instructor)|user\\.(${UUID}))$`);
const INSTRUCTOR_QUEUE_RE = new RegExp(`^rc\\.iq\\.(${UUID})\\.(${UUID})$`);

export function parseRoomKey(key: string): ParsedRoomKey | null {
  const m = ROOM_KEY_RE.exec(key);
  if (!m?.[1]) return null;
  const roomId = m[1];
  if (m[2]) return { kind: 'all', roomId };
  if (m[3]) return { kind: 'instructor', roomId };
  if (m[4]) return { kind: 'user', roomId, userId: m[4] };
  return null;
}

export function parseInstructorQueue(name: string): { roomId: string; userId: string } | null {
  const m = INSTRUCTOR_QUEUE_RE.exec(name);
  return m?.[1] && m[2] ? { roomId: m[1], userId: m[2] } : null;
}

/** A STOMP destination in one of the two forms roomcast hands out, parsed; anything else is null. */
export type ParsedDestination = { kind: 'room-key'; key: ParsedRoomKey } | { kind: 'instructor-queue'; roomId: string; userId: string };

const EXCHANGE_PREFIX = `/exchange/${ROOM_EXCHANGE}/`;
const QUEUE_PREFIX = '/amq/queue/';

/**
 * The inverse of `exchangeDestination` and `queueDestination` for room keys and instructor
 * queues, exact to the byte: the TLS proxy refuses a SUBSCRIBE to anything this returns null for.
 */
export function parseDestination(destination: string): ParsedDestination | null {
  if (destination.startsWith(EXCHANGE_PREFIX)) {
    const key = parseRoomKey(destination.slice(EXCHANGE_PREFIX.length));
    return key ? { kind: 'room-key', key } : null;
  }
  if (destination.startsWith(QUEUE_PREFIX)) {
    const queue = parseInstructorQueue(destination.slice(QUEUE_PREFIX.length));
    return queue ? { kind: 'instructor-queue', ...queue } : null;
  }
  return null;
}
