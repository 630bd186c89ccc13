/**
 * An in-process stand-in for the app server's send route, at the `fetch` level: the client's
 * real RoomcastApi turns its answers into ApiError / NetworkError exactly as it does for the
 * real server (status, error body, Retry-After). Each test scripts the answers, so refusals,
 * outages and lost answers are deterministic; the store is idempotent per client message id
 * like the real one.
 */
import type { RoomMessage, SendMessageRequest } from '../../shared/protocol/messages';
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

  private async fetch(url: string, init: RequestInit | undefined): Promise<Response> {
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
