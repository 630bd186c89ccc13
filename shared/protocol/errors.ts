/** Error codes the HTTP API returns in `{ "error": { "code", "message" } }`. */
export const ERROR_CODES = [
  'invalid_json',
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
  // Answered by the TLS proxy itself, before any app server sees the request.
  'too_many_connections',
  'bad_gateway',
  'proxy_overloaded',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}
