/**
 * The app server's REST API, typed, for browsers and Node alike. Every failure becomes an
 * ApiError (the server's code and message) or a NetworkError (no answer).
 */
import { ERROR_CODES, type ErrorBody, type ErrorCode } from '../../../shared/protocol/errors';
import type { CampaignBody } from '../../../shared/protocol/campaigns';
import type { EventStreamTicket } from '../../../shared/protocol/events';
import type { BrokerToken, ResyncPage, Role, RoomMessage, RoomSubscriptions, SendMessageRequest } from '../../../shared/protocol/messages';
import type { RoomPresence } from '../../../shared/protocol/presence';
import type { RoomState } from '../../../shared/protocol/room-state';
// Response shapes of the room and user routes (type-only: nothing of the server is bundled).
import type { Member, Room, User } from '../../../shared/protocol/rooms';
import { ApiError, NetworkError } from './errors';

export type { Member, Room, User };
export type MyRoom = Room & { role: Role };

export interface LoginResult {
  token: string;
  expiresAt: string;
  user: User;
}

export interface RoomDetails {
  /** `inviteCode` is only given to instructors. */
  room: Omit<Room, 'inviteCode'> & { inviteCode?: string };
  role: Role;
  members: Member[];
}

export interface SendResult {
  id: string;
  seq: number;
  message: RoomMessage;
}

export interface ApiOptions {
  /** Origin of the app server, e.g. `https://class.example`; '' (the default) is the page's own. */
  baseUrl?: string;
  /** Session token from a login; `login()` sets it. */
  token?: string | null;
  /** Defaults to the global fetch (browsers, Node 20). */
  fetch?: typeof fetch;
}

const KNOWN_CODES = new Set<string>(ERROR_CODES);

/** The server's error code, or one that fits the status when the body is not ours (a proxy's page). */
function errorCodeOf(status: number, body: unknown): { code: ErrorCode; message: string } {
  const e = (body as Partial<ErrorBody> | null)?.error;
  if (e && typeof e.code === 'string' && KNOWN_CODES.has(e.code)) return { code: e.code, message: String(e.message ?? e.code) };
  // A code newer than this client: its own words still tell the person more than a bare status.
  if (status >= 400 && status < 500 && status !== 401 && status !== 404 && e && typeof e.message === 'string') {
    return { code: 'invalid_request', message: e.message };
  }
  if (status === 401) return { code: 'unauthenticated', message: 'log in again' };
  if (status === 404) return { code: 'not_found', message: 'not found' };
  if (status >= 500) return { code: 'service_unavailable', message: `the server answered ${status}; retrying` };
  return { code: 'invalid_request', message: `the server answered ${status}` };
}

/** `Retry-After` in milliseconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3); null when absent or unreadable. */
export function retryAfterMsOf(header: string | null, now: number = Date.now()): number | null {
  if (header === null) return null;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // Only the three HTTP date forms: the engine's Date.parse also reads "1.5" or "-1" as dates
  // in 2001, and reads asctime (which has no zone) in local time instead of GMT.
  const imfOrRfc850 = /^[A-Z][a-z]{2,8}, \d{2}[ -][A-Z][a-z]{2}[ -]\d{2,4} \d{2}:\d{2}:\d{2} GMT$/.test(value);
  const asctime = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/.test(value);
  if (!imfOrRfc850 && !asctime) return null;
  const at = Date.parse(asctime ? `${value} GMT` : value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export class RoomcastApi {
  readonly baseUrl: string;
  token: string | null;
  private readonly fetchFn: typeof fetch;

  constructor(options: ApiOptions = {}) {
    this.baseUrl = (options.baseUrl ?? '').replace(/\/$/, '');
    this.token = options.token ?? null;
    // Bound: a browser's fetch throws "Illegal invocation" when called as a method of another object.
    this.fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  async login(username: string, password: string): Promise<LoginResult> {
    const result = await this.request<LoginResult>('POST', '/api/auth/login', { username, password });
    this.token = result.token;
    return result;
  }

  async logout(): Promise<void> {
    await this.request('POST', '/api/auth/logout');
    this.token = null;
  }

  me(): Promise<{ user: User; rooms: MyRoom[] }> {
    return this.request('GET', '/api/me');
  }

  brokerToken(): Promise<BrokerToken> {
    return this.request('POST', '/api/broker-token');
  }

  /** A single-use ticket that opens one event stream within its lifetime: `roomId`'s, or (none) all the user's rooms'. */
  eventStreamTicket(roomId?: string): Promise<EventStreamTicket> {
    return this.request('POST', '/api/events/tickets', roomId === undefined ? {} : { roomId });
  }

  /** The URL an EventSource opens with a ticket; `lastEventId` resumes after that event. */
  eventStreamUrl(ticket: string, options: { roomId?: string; lastEventId?: string | null } = {}): string {
    const path = options.roomId === undefined ? '/api/events/stream' : `/api/rooms/${encodeURIComponent(options.roomId)}/events/stream`;
    const query = new URLSearchParams({ ticket });
    if (options.lastEventId) query.set('lastEventId', options.lastEventId);
    return `${this.baseUrl}${path}?${query}`;
  }

  joinRoom(inviteCode: string): Promise<{ room: MyRoom }> {
    return this.request('POST', '/api/rooms/join', { inviteCode });
  }

  room(roomId: string): Promise<RoomDetails> {
    return this.request('GET', `/api/rooms/${encodeURIComponent(roomId)}`);
  }

  subscriptions(roomId: string): Promise<RoomSubscriptions> {
    return this.request('GET', `/api/rooms/${encodeURIComponent(roomId)}/subscriptions`);
  }

  /** Resync: `after` for what comes over the room-wide subscription, `personalAfter` for the rest (see `ResyncPage`). */
  messagesAfter(roomId: string, cursors: { after: number; personalAfter: number }, limit: number): Promise<ResyncPage> {
    const { after, personalAfter } = cursors;
    return this.request('GET', `/api/rooms/${encodeURIComponent(roomId)}/messages?after=${after}&personalAfter=${personalAfter}&limit=${limit}`);
  }

  send(roomId: string, message: SendMessageRequest): Promise<SendResult> {
    return this.request('POST', `/api/rooms/${encodeURIComponent(roomId)}/messages`, message);
  }

  /** The room's interactive state now (the shown step, polls, hands, the board), as the caller may see it, and the seq it holds everything up to. */
  roomState(roomId: string): Promise<{ state: RoomState }> {
    return this.request('GET', `/api/rooms/${encodeURIComponent(roomId)}/state`);
  }

  presenceBeat(roomId: string): Promise<void> {
    return this.request('POST', `/api/rooms/${encodeURIComponent(roomId)}/presence`);
  }

  presence(roomId: string): Promise<RoomPresence> {
    return this.request('GET', `/api/rooms/${encodeURIComponent(roomId)}/presence`);
  }

  /**
   * Leaves the room's presence. `keepalive` lets the request outlive the page being unloaded
   * (navigator.sendBeacon cannot carry the Authorization header).
   */
  leave(roomId: string, options: { keepalive?: boolean } = {}): Promise<void> {
    return this.request('DELETE', `/api/rooms/${encodeURIComponent(roomId)}/presence`, undefined, { keepalive: options.keepalive ?? false });
  }

  /**
   * Starts a bulk announcement by e-mail to the members of these rooms (instructors of every one
   * of them). `idempotencyKey`: the same key on a retry answers the campaign already started.
   */
  createCampaign(input: { roomIds: string[]; subject: string; text: string }, idempotencyKey: string): Promise<{ campaign: CampaignBody }> {
    return this.request('POST', '/api/campaigns', input, { headers: { 'idempotency-key': idempotencyKey } });
  }

  /** A room's campaigns the user can steer, newest first, with their progress. */
  campaigns(roomId: string, limit = 20): Promise<{ campaigns: CampaignBody[] }> {
    return this.request('GET', `/api/campaigns?roomId=${encodeURIComponent(roomId)}&limit=${limit}`);
  }

  campaignAction(campaignId: string, action: 'pause' | 'resume' | 'cancel'): Promise<{ campaign: CampaignBody }> {
    return this.request('POST', `/api/campaigns/${encodeURIComponent(campaignId)}/${action}`);
  }

  private async request<T = void>(method: string, path: string, body?: unknown, o: { keepalive?: boolean; headers?: Record<string, string> } = {}): Promise<T> {
    const headers: Record<string, string> = { ...o.headers };
    const keepalive = o.keepalive ?? false;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await this.fetchFn(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        keepalive,
      });
    } catch (err) {
      throw new NetworkError(`${method} ${path}: no answer from the server`, err);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new NetworkError(`${method} ${path}: the answer was cut off`, err);
    }
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON (an HTML error page from something in between): the status decides.
    }
    if (!res.ok) {
      const { code, message } = errorCodeOf(res.status, parsed);
      throw new ApiError(res.status, code, message, retryAfterMsOf(res.headers.get('retry-after')));
    }
    return parsed as T;
  }
}
