/**
 * The client's error taxonomy. Every failure the client reports is a RoomClientError with a
 * stable `code`; `ApiError` carries the server's own code and message, so a page can show
 * "you are not a member of this room" rather than "HTTP 403".
 */
import type { ErrorCode } from '../../../shared/protocol/errors';

/** Codes of failures that happen on the client's side of the wire. */
export type LocalErrorCode =
  /** The request never got an answer: offline, refused, reset. */
  | 'network'
  /** The broker sent an ERROR frame (refused login or subscription). */
  | 'broker_refused'
  /** The WebSocket closed, failed to open, or the STOMP handshake timed out. */
  | 'broker_disconnected'
  /** A MESSAGE frame whose body is not a room message. */
  | 'bad_frame'
  /** The client was constructed with unusable options. */
  | 'invalid_options'
  /** Unsent messages cannot be kept in the browser's storage (disabled, full): they live in memory only. */
  | 'storage_unavailable';

export type ClientErrorCode = ErrorCode | LocalErrorCode;

export class RoomClientError extends Error {
  override name = 'RoomClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The app server answered with an error status. */
export class ApiError extends RoomClientError {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    /** How long the server asked us to wait (its `Retry-After`), or null when it did not say. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(code, message);
  }
}

/** No HTTP answer at all. */
export class NetworkError extends RoomClientError {
  override name = 'NetworkError';
  constructor(message: string, cause?: unknown) {
    super('network', message, { cause });
  }
}

/** The STOMP connection failed or ended. */
export class BrokerError extends RoomClientError {
  override name = 'BrokerError';
  constructor(code: 'broker_refused' | 'broker_disconnected', message: string) {
    super(code, message);
  }
}

/** Worth trying again later: no answer, the server is overloaded or a backing service is down. */
export function isRetriable(err: unknown): boolean {
  if (err instanceof NetworkError || err instanceof BrokerError) return true;
  return err instanceof ApiError && (err.status >= 500 || err.status === 429 || err.status === 408);
}

/**
 * The server refused the request itself: sending it again, unchanged, gets the same answer.
 * 401 is not about the request (the session ended; after a new login it may be sent again);
 * the retriable 4xx (408, 429) are about timing.
 */
export function isRefusal(err: unknown): err is ApiError {
  return err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 401 && !isRetriable(err);
}

/**
 * Failures no retry can fix for this room: the session is gone, or the user is not (or no
 * longer) a member. The client stops and the page asks the person what to do.
 */
export function isFatal(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 401 || err.code === 'not_a_member' || err.code === 'room_not_found');
}
