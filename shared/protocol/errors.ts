import type { z } from 'zod';
import type { errorBodySchema } from './schemas';

/** The refusals of an interaction (an `action` message) that the room's log does not allow now. */
export const INTERACTION_ERROR_CODES = [
  'poll_exists',
  'poll_not_found',
  'poll_closed',
  'poll_answered',
  'hand_already_raised',
  'hand_not_raised',
  'question_not_found',
  'already_upvoted',
] as const;

/** Error codes the HTTP API returns in `{ "error": { "code", "message" } }`. */
export const ERROR_CODES = [
  'invalid_json',
  'invalid_utf8',
  'invalid_request',
  'payload_too_large',
  'body_too_large',
  'unauthenticated',
  'invalid_credentials',
  'forbidden',
  'not_a_member',
  'not_found',
  'room_not_found',
  'invite_not_found',
  'recipient_not_found',
  'idempotency_conflict',
  'broker_unavailable',
  'service_unavailable',
  'internal',
  // JSON that parses but cannot be kept exactly (server/src/http/json-guard.ts).
  'unsupported_media_type',
  'nul_character',
  'lone_surrogate',
  'number_out_of_range',
  'json_too_deep',
  // Login attempts over the limit (server/src/auth/attempt-limiter.ts); Retry-After says when to retry.
  'too_many_attempts',
  // Removing a member the caller may not remove (the room's creator, or oneself: leave instead).
  'cannot_remove_member',
  'creator_cannot_leave',
  'instructor_only_kind',
  // Joining a room an instructor removed the caller from.
  'removed_from_room',
  // A feed cursor this API did not give out (GET /api/events, /api/rooms/:id/events).
  'invalid_cursor',
  // An event stream ticket that is unknown, used, expired, or for another stream (POST /api/events/tickets).
  'invalid_ticket',
  // More event streams open at once than a user may have.
  'too_many_streams',
  // A link from a mail (unsubscribe, password reset, address check) that is forged, used or expired.
  'invalid_link',
  // The operators' API (/api/admin/...) while ROOMCAST_ADMIN_TOKEN is unset.
  'admin_disabled',
  // An e-mail address another account already has.
  'email_taken',
  // A webhook URL that is malformed, not https, or that resolves to a non-public address (SSRF), or to nothing.
  'webhook_url_invalid',
  'webhook_target_forbidden',
  'webhook_target_unresolvable',
  // Resuming a webhook endpoint that was disabled because its owner left the room: create a new one.
  'webhook_owner_left',
  // More webhook endpoints than a room may have.
  'too_many_webhooks',
  // A campaign asked to pause, resume or cancel from a state that does not allow it (e.g. resume a cancelled one).
  'campaign_state_conflict',
  // A campaign whose rooms have nobody with a verified address to mail.
  'no_recipients',
  // More campaigns running or paused than one instructor may have.
  'too_many_campaigns',
  // Interactions (docs/interactions.md): what the room's log does not allow now.
  ...INTERACTION_ERROR_CODES,
  // Answered by the TLS proxy itself, before any app server sees the request.
  'too_many_connections',
  'bad_gateway',
  'proxy_overloaded',
  'origin_not_allowed',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The body of every error response (its schema: `errorBodySchema`). */
export type ErrorBody = z.infer<typeof errorBodySchema>;
