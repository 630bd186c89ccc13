/**
 * Tickets that open an event stream. An EventSource cannot send an Authorization header, and a
 * session token in a URL would end up in access logs, browser history and Referer headers; so a
 * logged-in client asks for a ticket (POST /api/events/tickets) and puts that in the stream's
 * query instead. A ticket is random, opens one stream once (taken with GETDEL, so two requests
 * racing with the same ticket cannot both win), lives STREAM_TICKET_TTL_SECONDS, names the
 * stream it opens (one room, or all the user's rooms) and is bound to its session: the stream
 * checks that session at once and for as long as it runs.
 *
 * Only a SHA-256 digest of the ticket is the Redis key, as for sessions: a Redis dump opens nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { STREAM_TICKET_TTL_SECONDS, type EventStreamTicket } from '../../../shared/protocol/events';
import type { Redis } from '../redis';

/** What a ticket grants: a stream for `userId` under the session `sessionRef` (SessionStore.refOf). */
export interface TicketGrant {
  userId: string;
  sessionRef: string;
  /** The room whose stream it opens; null: the stream of all the user's rooms. */
  roomId: string | null;
}

const ticketKey = (ticket: string): string => `rc:stkt:${createHash('sha256').update(ticket).digest('hex')}`;
/** 32 random bytes in base64url: what `issue` hands out, and so the only shape worth a lookup. */
const TICKET_RE = /^[\w-]{43}$/;

export class StreamTickets {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds = STREAM_TICKET_TTL_SECONDS,
  ) {}

  async issue(grant: TicketGrant): Promise<EventStreamTicket> {
    const ticket = randomBytes(32).toString('base64url');
    await this.redis.set(ticketKey(ticket), JSON.stringify(grant), 'EX', this.ttlSeconds);
    return { ticket, expiresInSeconds: this.ttlSeconds };
  }

  /** Takes the ticket: its grant the first time within its lifetime, null ever after (or if it never was one). */
  async redeem(ticket: string): Promise<TicketGrant | null> {
    if (!TICKET_RE.test(ticket)) return null;
    const raw = await this.redis.getdel(ticketKey(ticket));
    return raw ? (JSON.parse(raw) as TicketGrant) : null;
  }
}
