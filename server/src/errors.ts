/**
 * The error taxonomy: every failure the API reports is an AppError with a stable code and an
 * HTTP status. `toAppError` is the one place that maps upstream failures (pg, Redis, amqplib)
 * onto it; the Express error handler turns an AppError into `{ error: { code, message } }`.
 */
import type { ErrorCode } from '../../shared/protocol/errors';

export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.details = options?.details;
  }
  readonly details: unknown;
}

export class ValidationError extends AppError {
  override name = 'ValidationError';
  constructor(message: string, details?: unknown) {
    super(400, 'invalid_request', message, { details });
  }
}

export class AuthError extends AppError {
  override name = 'AuthError';
  constructor(code: 'unauthenticated' | 'invalid_credentials', message: string) {
    super(401, code, message);
  }
}

export class ForbiddenError extends AppError {
  override name = 'ForbiddenError';
  constructor(code: 'forbidden' | 'not_a_member' | 'cannot_remove_member' | 'creator_cannot_leave' | 'instructor_only_kind' | 'removed_from_room', message: string) {
    super(403, code, message);
  }
}

export class NotFoundError extends AppError {
  override name = 'NotFoundError';
  constructor(code: 'not_found' | 'room_not_found' | 'invite_not_found' | 'recipient_not_found' | 'poll_not_found' | 'question_not_found', message: string) {
    super(404, code, message);
  }
}

export class ConflictError extends AppError {
  override name = 'ConflictError';
  constructor(code: 'idempotency_conflict' | 'email_taken', message: string) {
    super(409, code, message);
  }
}

/** Too many attempts: the client may retry after `retryAfterSeconds` (sent as Retry-After). */
export class RateLimitedError extends AppError {
  override name = 'RateLimitedError';
  constructor(
    code: 'too_many_attempts' | 'too_many_streams',
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(429, code, message);
  }
}

export class UnavailableError extends AppError {
  override name = 'UnavailableError';
  constructor(code: 'broker_unavailable' | 'service_unavailable', message: string, cause?: unknown) {
    super(503, code, message, { cause });
  }
}

/** Network-level failures of Postgres, Redis or the broker: the request may be retried. */
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTCONN', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/**
 * Postgres SQLSTATEs that mean "try again": connection, resources, shutdown, serialization, and
 * 25006 (read-only transaction), which a standby answers while a failover moves the primary.
 */
const RETRIABLE_SQLSTATE = /^(08|53|57P|40|25006$)/;

/** Maps any thrown value to an AppError; unknown failures become a 500 `internal`. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { code?: unknown; name?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  if (UNAVAILABLE_ERRNOS.has(code) || RETRIABLE_SQLSTATE.test(code) || e?.name === 'MaxRetriesPerRequestError') {
    return new UnavailableError('service_unavailable', 'a backing service is unavailable; retry shortly', err);
  }
  if (typeof e?.message === 'string' && /Connection terminated|timeout exceeded when trying to connect|Query read timeout/i.test(e.message)) {
    return new UnavailableError('service_unavailable', 'a backing service is unavailable; retry shortly', err);
  }
  return new AppError(500, 'internal', 'internal error', { cause: err });
}
