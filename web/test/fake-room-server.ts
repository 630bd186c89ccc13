/**
 * An in-process stand-in for the app server's send route, at the `fetch` level: the client's
 * real RoomcastApi turns its answers into ApiError / NetworkError exactly as it does for the
 * real server (status, error body, Retry-After). Each test scripts the answers, so refusals,
 * outages and lost answers are deterministic; the store is idempotent per client message id
 * like the real one.
 */
import type { ResyncPage, Role, RoomMessage, RoomSubscriptions, SendMessageRequest } from '../../shared/protocol/messages';
import type { RoomPresence } from '../../shared/protocol/presence';
import { exchangeDestination, instructorQueueName, queueDestination, roomAllKey, roomUserKey } from '../../shared/protocol/routing';
import { RoomcastApi } from '../src/client/index';
import type { StorageLike } from '../src/client/index';

export type Answer =
  | 'store'
  /** No answer at all (fetch rejects, as it does offline). */
  | 'network'
  /** Stored, but the answer never reaches the client (connection reset on the way back). */
  | 'lost'
  | { status: number; code: string; message: string; retryAfter?: string };

export const ROOM_ID = '6f1b1a52-6a38-4a8e-9d4a-0d2f3c4b5a61';
export const USER_ID = '0b7e2f1c-4d3a-4b2e-8f1a-9c8d7e6f5a41';
/** Another member of the room (the sender of `commit`'s messages by default). */
export const OTHER_ID = '5c3d2e1f-0a9b-4c8d-9e7f-6a5b4c3d2e10';

/** The routes besides sending that RoomClient calls. */
export type RouteName = 'subscriptions' | 'broker-token' | 'resync' | 'presence-post' | 'presence-get' | 'presence-delete';
/** How one of those answers: normally, not at all (fetch rejects), or with an error. */
export type RouteAnswer = 'answer' | 'network' | { status: number; code: string; message: string; retryAfter?: string };

export class FakeRoomServer {
  /** Every POSTed request, in arrival order (retries included). */
  readonly calls: SendMessageRequest[] = [];
  /** Stored messages in seq order. */
  readonly stored: RoomMessage[] = [];
  /** Decides each POST's answer; `attempt` counts POSTs of that client message id, from 1. Default: store it. */
  answer: (request: SendMessageRequest, attempt: number) => Answer = () => 'store';
  /** POSTs in flight right now, and the most ever at once. */
  inFlight = 0;
  maxInFlight = 0;
  /** How long each answer takes (fake time). */
  latencyMs = 0;

  readonly api = new RoomcastApi({ baseUrl: 'https://class.test', token: 'session-token', fetch: (input, init) => this.fetch(String(input), init) });

  /** What the client's SendQueue posts: the API's send, as RoomClient wires it. */
  readonly post = async (request: SendMessageRequest): Promise<RoomMessage> => (await this.api.send(ROOM_ID, request)).message;

  /** Texts of the POSTs in order. */
  postedTexts(): string[] {
    return this.calls.map((c) => String(c.body.text));
  }

  storedTexts(): string[] {
    return this.stored.map((m) => String(m.body.text));
  }

  /** POSTs of one client message id. */
  attemptsOf(clientMsgId: string): number {
    return this.calls.filter((c) => c.clientMsgId === clientMsgId).length;
  }

  // The routes RoomClient calls besides sending: subscriptions, broker token, resync, presence.

  /** The caller's role in the room: what `subscriptions` lists and what a resync may return. */
  role: Role = 'learner';
  /** Every request to those routes, in order; `query` holds a resync's parameters. */
  readonly requests: { route: RouteName; query: Record<string, string> }[] = [];
  /** Decides each answer of those routes; `attempt` counts requests to that route, from 1. Default: answer. */
  routeAnswer: (route: RouteName, attempt: number) => RouteAnswer = () => 'answer';
  /** How long each resync answer takes (fake time). The room is read when the request arrives. */
  resyncLatencyMs = 0;
  /** Lifetime of each broker token handed out. */
  brokerTokenTtlMs = 300_000;
  /** What GET presence answers. */
  presenceAnswer: RoomPresence = { online: 1 };

  /** Commits a message of another member (or `senderId`) to the room, as the send transaction does; publishing it is the test's business. */
  commit(m: { audience?: RoomMessage['audience']; senderId?: string; recipientId?: string | null; kind?: RoomMessage['kind']; text?: string } = {}): RoomMessage {
    const seq = this.stored.length + 1;
    const audience = m.audience ?? 'everyone';
    const message: RoomMessage = {
      id: `m-${seq}`,
      roomId: ROOM_ID,
      seq,
      senderId: m.senderId ?? OTHER_ID,
      audience,
      recipientId: m.recipientId ?? null,
      kind: m.kind ?? 'chat',
      body: { text: m.text ?? `message ${seq}` },
      clientMsgId: `c-${seq}`,
      createdAt: new Date().toISOString(),
      broadcastSeq: audience === 'everyone' ? this.nextBroadcastSeq() : null,
    };
    this.stored.push(message);
    return message;
  }

  /** The resync requests' cursors, in order. */
  resyncQueries(): { after: number; personalAfter: number; limit: number }[] {
    return this.requests
      .filter((r) => r.route === 'resync')
      .map((r) => ({ after: Number(r.query.after), personalAfter: Number(r.query.personalAfter ?? r.query.after), limit: Number(r.query.limit) }));
  }

  /** Requests to one route so far. */
  countOf(route: RouteName): number {
    return this.requests.filter((r) => r.route === route).length;
  }

  private nextBroadcastSeq(): number {
    return this.stored.filter((m) => m.audience === 'everyone').length + 1;
  }

  /** Answers the routes other than sending; null for a request that is not one of them. */
  private async route(url: string, init: RequestInit | undefined): Promise<Response | null> {
    const { pathname, searchParams } = new URL(url);
    const method = init?.method ?? 'GET';
    const room = `/api/rooms/${ROOM_ID}`;
    const name: RouteName | null =
      method === 'GET' && pathname === `${room}/subscriptions`
        ? 'subscriptions'
        : method === 'POST' && pathname === '/api/broker-token'
          ? 'broker-token'
          : method === 'GET' && pathname === `${room}/messages`
            ? 'resync'
            : pathname === `${room}/presence` && ['POST', 'GET', 'DELETE'].includes(method)
              ? (`presence-${method.toLowerCase()}` as RouteName)
              : null;
    if (!name) return null;
    const query = Object.fromEntries(searchParams);
    this.requests.push({ route: name, query });
    const json = (status: number, body: unknown): Response =>
      new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
    const answer = this.routeAnswer(name, this.countOf(name));
    if (answer === 'network') throw new TypeError('fetch failed');
    if (answer !== 'answer') {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (answer.retryAfter !== undefined) headers['retry-after'] = answer.retryAfter;
      return new Response(JSON.stringify({ error: { code: answer.code, message: answer.message } }), { status: answer.status, headers });
    }
    switch (name) {
      case 'subscriptions': {
        const subs: RoomSubscriptions =
          this.role === 'learner'
            ? { roomId: ROOM_ID, role: 'learner', topics: [exchangeDestination(roomAllKey(ROOM_ID)), exchangeDestination(roomUserKey(ROOM_ID, USER_ID))], instructorQueue: null }
            : {
                roomId: ROOM_ID,
                role: 'instructor',
                topics: [],
                instructorQueue: { name: instructorQueueName(ROOM_ID, USER_ID), destination: queueDestination(instructorQueueName(ROOM_ID, USER_ID)) },
              };
        return json(200, subs);
      }
      case 'broker-token': {
        const n = this.countOf('broker-token');
        return json(200, { login: USER_ID, passcode: `passcode-${n}`, expiresAt: new Date(Date.now() + this.brokerTokenTtlMs).toISOString() });
      }
      case 'resync': {
        const page = this.resyncPage(Number(query.after ?? 0), Number(query.personalAfter ?? query.after ?? 0), Number(query.limit ?? 100));
        if (this.resyncLatencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.resyncLatencyMs));
        return json(200, page);
      }
      case 'presence-get':
        return json(200, this.presenceAnswer);
      default:
        return json(204, undefined);
    }
  }

  /** The server's resync (MessageStore.listAfter): what the caller may see after the cursors, and up to where that is complete. */
  private resyncPage(after: number, personalAfter: number, limit: number): ResyncPage {
    const visible = this.stored.filter((m) =>
      this.role === 'instructor'
        ? m.seq > after
        : (m.audience === 'everyone' && m.seq > after) ||
          (m.audience !== 'everyone' && m.senderId === USER_ID && m.seq > personalAfter) ||
          (m.recipientId === USER_ID && m.senderId !== USER_ID && m.seq > personalAfter),
    );
    const messages = visible.slice(0, limit);
    const nextAfter = messages.at(-1)?.seq ?? after;
    // A full page is complete only up to its last row; the last page up to the room's head.
    if (visible.length > limit) return { messages, nextAfter, hasMore: true, through: nextAfter, broadcastThrough: null };
    const head = this.stored.at(-1);
    const broadcastThrough = this.stored.filter((m) => m.audience === 'everyone').length;
    return { messages, nextAfter, hasMore: false, through: head?.seq ?? 0, broadcastThrough };
  }

  private async fetch(url: string, init: RequestInit | undefined): Promise<Response> {
    const routed = await this.route(url, init);
    if (routed) return routed;
    if (init?.method !== 'POST' || !url.endsWith(`/api/rooms/${ROOM_ID}/messages`)) throw new Error(`unexpected request ${init?.method} ${url}`);
    const request = JSON.parse(String(init.body)) as SendMessageRequest;
    this.calls.push(request);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
      const answer = this.answer(request, this.attemptsOf(request.clientMsgId));
      if (answer === 'network') throw new TypeError('fetch failed');
      if (answer === 'store') return this.store(request);
      if (answer === 'lost') {
        this.store(request);
        throw new TypeError('fetch failed: connection reset');
      }
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (answer.retryAfter !== undefined) headers['retry-after'] = answer.retryAfter;
      return new Response(JSON.stringify({ error: { code: answer.code, message: answer.message } }), { status: answer.status, headers });
    } finally {
      this.inFlight--;
    }
  }

  private store(request: SendMessageRequest): Response {
    const json = (status: number, body: unknown): Response => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
    const existing = this.stored.find((m) => m.clientMsgId === request.clientMsgId);
    if (existing) {
      if (JSON.stringify(existing.body) !== JSON.stringify(request.body)) {
        return json(409, { error: { code: 'idempotency_conflict', message: 'this clientMsgId was already used for another message' } });
      }
      return json(201, { id: existing.id, seq: existing.seq, message: existing });
    }
    const seq = this.stored.length + 1;
    // Only the fields the send queue and the pages read: the rest of the shape is the resync's business.
    const message = {
      id: `m-${seq}`,
      roomId: ROOM_ID,
      seq,
      senderId: USER_ID,
      audience: request.audience,
      recipientId: request.recipientId ?? null,
      kind: request.kind,
      body: request.body,
      clientMsgId: request.clientMsgId,
      createdAt: new Date().toISOString(),
      broadcastSeq: request.audience === 'everyone' ? this.nextBroadcastSeq() : null,
    } as RoomMessage;
    this.stored.push(message);
    return json(201, { id: message.id, seq, message });
  }
}

/** A Web Storage stand-in; `failWrites` makes setItem throw as a full quota does. */
export class FakeStorage implements StorageLike {
  readonly items = new Map<string, string>();
  failWrites = false;

  get length(): number {
    return this.items.size;
  }

  key(index: number): string | null {
    return [...this.items.keys()][index] ?? null;
  }

  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }

  setItem(key: string, value: string): void {
    if (this.failWrites) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    this.items.set(key, value);
  }

  removeItem(key: string): void {
    this.items.delete(key);
  }
}
