/**
 * Room events, as every feed carries them (pull, stream, webhooks): the same shape, the same
 * ids, the same order. docs/events.md describes them.
 */
import type { z } from 'zod';
import type { eventPageSchema, eventStreamTicketSchema, roomEventSchema } from './schemas';

export const EVENT_TYPES = ['room.created', 'member.joined', 'member.left', 'message.created'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * A room position as `formatPosition` writes it. At most 15 digits each: every such number is
 * exact as a JavaScript number (a 16-digit one may round, and come back as a position nobody
 * gave out).
 */
export const POSITION_RE = /^(0|[1-9]\d{0,14})\.(0|[1-9]\d{0,14})$/;

/** A room event, as every feed carries it (its schema: `roomEventSchema`). */
export type RoomEvent = z.infer<typeof roomEventSchema>;

/** GET /api/rooms/:id/events and GET /api/events. */
export type EventPage = z.infer<typeof eventPageSchema>;

/**
 * A position in one room: after the message with seq `seq` and after the room's `n`-th
 * non-message event. Written "<seq>.<n>"; "0.0" is the room's beginning.
 */
export interface RoomPosition {
  seq: number;
  n: number;
}

export const formatPosition = (p: RoomPosition): string => `${p.seq}.${p.n}`;

/** Parses "<seq>.<n>", or null if it is not one. */
export function parsePosition(s: string): RoomPosition | null {
  const m = POSITION_RE.exec(s);
  return m ? { seq: Number(m[1]), n: Number(m[2]) } : null;
}

/** `Last-Event-ID` is a room position (a room stream) or a feed cursor (the all-rooms stream). */
export type StreamKind = 'room' | 'all';

/** POST /api/events/tickets: opens one stream, once, within `expiresInSeconds`. */
export type EventStreamTicket = z.infer<typeof eventStreamTicketSchema>;

export const STREAM_TICKET_TTL_SECONDS = 30;

/**
 * The stream's own SSE event types, beside the room events it carries (docs/events.md, "Stream").
 * - `resume`: first, once per connection: where this connection reads from.
 * - `reset`: the id given is beyond anything the room has (a restored database): drop what you
 *   hold of those rooms; the stream goes on from their beginning.
 * - `end`: the server ends the stream; `resume` says whether to open a new one.
 */
export const STREAM_CONTROL_EVENTS = ['resume', 'reset', 'end'] as const;
export type StreamControlEvent = (typeof STREAM_CONTROL_EVENTS)[number];

export interface StreamResumeData {
  stream: StreamKind;
  /** The id this connection reads after ('' from the beginning): the one asked for, unless a reset came first. */
  after: string;
  /** The id the client gave (`Last-Event-ID` or `?lastEventId=`), or null. */
  requested: string | null;
}

export interface StreamResetData {
  reason: 'beyond_room';
  /** The rooms whose given position lies beyond their last event; read again from their beginning. */
  rooms: string[];
}

export type StreamEndReason = 'lifetime' | 'session_ended' | 'membership_ended' | 'shutdown';

export interface StreamEndData {
  reason: StreamEndReason;
  /** True: open a new stream (new ticket, same last id). False: the session or membership is over. */
  resume: boolean;
}
