/**
 * The API's description, one operation at a time, written next to its route with the very zod
 * schemas the route parses with: a schema can change only in one place, and the description
 * (`openapi.ts` makes the OpenAPI document of it) changes with it.
 *
 * A route file calls `describeRoute` beside each `router.<method>(...)`. Describing the same
 * method and path again replaces the description, since a route factory may run more than once
 * in a process (tests start several servers). `server/test/openapi.test.ts` holds the two
 * together: every mounted route must be described, and every description mounted.
 */
import type { z } from 'zod';
import type { ErrorCode } from '../../../shared/protocol/errors';

/**
 * Who may call: `session` (`Authorization: Bearer <session token>` from POST /api/auth/login),
 * `admin` (`Authorization: Bearer <ROOMCAST_ADMIN_TOKEN>`), `ticket` (a single-use stream ticket
 * in the query, for an EventSource, which cannot send headers) or `none`.
 */
export type Auth = 'session' | 'admin' | 'ticket' | 'none';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** A response other than a plain JSON body, or one with headers worth naming. */
export interface Reply {
  description?: string;
  /** The JSON body. */
  json?: z.ZodType;
  /** A body that is not JSON: its media type (`text/html`, `text/plain`, `text/event-stream`). */
  media?: string;
  /** Response headers a client may act on: name → what it says. */
  headers?: Record<string, string>;
}

export interface OperationSpec {
  /** Unique, stable, camelCase: what a generated client names the call. */
  operationId: string;
  method: Method;
  /** The public path in Express form, mount included: `/api/rooms/:roomId/messages`. */
  path: string;
  /** Groups operations in the document (`rooms`, `messages`, …). */
  tag: string;
  summary: string;
  /** Markdown: what an integrator needs beyond the schemas (limits, visibility, side effects). */
  description?: string;
  auth: Auth;
  /** Path parameters; one not given here is documented as a plain string. */
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** Request headers the route reads: name → what it says. */
  headers?: Record<string, string>;
  /** The JSON request body, as the route parses it. */
  body?: z.ZodType;
  /** The same request as a form (`application/x-www-form-urlencoded`), for routes a browser form posts to. */
  form?: z.ZodType;
  /** False when the body may be left out (default: required when `body` or `form` is given). */
  bodyRequired?: boolean;
  /** Success (and other non-error) answers by status: a JSON body's schema, a `Reply`, or null for no body. */
  responses: Record<number, z.ZodType | Reply | null>;
  /**
   * The error codes this operation answers with beyond the common ones (`commonErrors`), each
   * under its status from `ERRORS`.
   */
  errors?: readonly ErrorCode[];
}

/**
 * Status and meaning of each error code, for the description. A code an operation names must be
 * here (the document refuses to build otherwise); the proxy's own codes are listed too, since a
 * client meets them through the public URL.
 */
export const ERRORS: Partial<Record<ErrorCode, { status: number; means: string }>> = {
  invalid_json: { status: 400, means: 'the body is not JSON' },
  invalid_utf8: { status: 400, means: 'the body is not valid UTF-8' },
  invalid_request: { status: 400, means: 'the body or query does not match the schema; `details` lists each problem as `{path, message}`' },
  nul_character: { status: 400, means: 'a string or key contains U+0000' },
  lone_surrogate: { status: 400, means: 'a string or key contains a lone UTF-16 surrogate' },
  number_out_of_range: { status: 400, means: 'a number is beyond the range of a double' },
  invalid_cursor: { status: 400, means: 'a cursor or position this API did not give out' },
  invalid_link: { status: 400, means: 'the link from the mail is forged, used or expired' },
  webhook_url_invalid: { status: 400, means: 'the webhook URL is malformed, not https, or carries credentials or a fragment' },
  webhook_target_forbidden: { status: 400, means: 'the webhook URL resolves to a non-public address (loopback, private, link-local, …)' },
  webhook_target_unresolvable: { status: 400, means: 'the webhook URL\u2019s host does not resolve' },
  webhook_owner_left: { status: 409, means: 'the webhook endpoint was disabled because its owner left the room and cannot be resumed; create a new endpoint' },
  too_many_webhooks: { status: 409, means: 'the room already has as many webhook endpoints as it may (10); delete one first' },
  poll_exists: { status: 409, means: 'a poll with this pollId was opened in the room already' },
  poll_not_found: { status: 404, means: 'no poll with this pollId in the room' },
  poll_closed: { status: 409, means: 'the poll is closed (or past its closesAt)' },
  poll_answered: { status: 409, means: 'the learner answered already and the poll does not allow a change' },
  hand_already_raised: { status: 409, means: 'the hand is up already' },
  hand_not_raised: { status: 409, means: 'that hand is not up' },
  question_not_found: { status: 404, means: 'no such question in the room (or, to upvote, not a public one)' },
  already_upvoted: { status: 409, means: 'the learner upvoted this question already' },
  campaign_state_conflict: { status: 409, means: 'the campaign is not in a state this action applies to (resume a running one, cancel a finished one, …)' },
  too_many_campaigns: { status: 409, means: 'the sender already has 5 campaigns running or paused; one must finish or be cancelled first' },
  no_recipients: { status: 422, means: 'nobody in the rooms has a verified e-mail address to mail (the sender aside)' },
  unauthenticated: { status: 401, means: 'no token, a malformed one, or a session that expired or was revoked: log in again' },
  invalid_credentials: { status: 401, means: 'wrong username or password' },
  invalid_ticket: { status: 401, means: 'the stream ticket is unknown, used, expired or for another stream: get a new one' },
  forbidden: { status: 403, means: 'the caller\u2019s role does not allow this' },
  not_a_member: { status: 403, means: 'the caller is not a member of this room' },
  cannot_remove_member: { status: 403, means: 'the room\u2019s creator cannot be removed, and a member leaves rather than removing themself' },
  creator_cannot_leave: { status: 403, means: 'the room\u2019s creator cannot leave it' },
  instructor_only_kind: { status: 403, means: '`announcement` and `answer` are instructors\u2019 kinds' },
  removed_from_room: { status: 403, means: 'an instructor removed the caller from this room for good' },
  origin_not_allowed: { status: 403, means: '(proxy) the page\u2019s origin may not open the WebSocket' },
  not_found: { status: 404, means: 'no such thing (or no route at all)' },
  room_not_found: { status: 404, means: 'no such room (a malformed room id too)' },
  invite_not_found: { status: 404, means: 'no room has this invite code' },
  recipient_not_found: { status: 404, means: 'the recipient is not a member of this room' },
  admin_disabled: { status: 404, means: 'the operators\u2019 API is off: ROOMCAST_ADMIN_TOKEN is unset' },
  idempotency_conflict: { status: 409, means: 'this `clientMsgId` was used before with other content' },
  email_taken: { status: 409, means: 'another account has this address' },
  payload_too_large: { status: 413, means: 'the request body is larger than the server accepts (64 KiB)' },
  body_too_large: { status: 413, means: 'the message body is larger than 16 KiB serialized' },
  json_too_deep: { status: 413, means: 'JSON nested deeper than 32 levels' },
  unsupported_media_type: { status: 415, means: 'a request body that is not `Content-Type: application/json` (UTF-8)' },
  too_many_attempts: { status: 429, means: 'too many attempts; `Retry-After` says when to try again' },
  too_many_connections: { status: 429, means: '(proxy) too many open connections from this address' },
  too_many_streams: { status: 429, means: 'more event streams open at once than a user may have: close one' },
  internal: { status: 500, means: 'a bug: the server logged it' },
  bad_gateway: { status: 502, means: '(proxy) no app server answered' },
  broker_unavailable: { status: 503, means: 'the message broker is unreachable; retry after `Retry-After`' },
  service_unavailable: { status: 503, means: 'a backing service is unavailable; retry after `Retry-After`' },
  proxy_overloaded: { status: 503, means: '(proxy) overloaded; retry shortly' },
};

/** What every operation may answer, whatever it does. */
export const COMMON_ERRORS: readonly ErrorCode[] = ['internal', 'service_unavailable'];
/** What an operation with a JSON body may answer before its route runs (json-guard.ts, the body parser). */
export const BODY_ERRORS: readonly ErrorCode[] = [
  'invalid_json',
  'invalid_utf8',
  'invalid_request',
  'nul_character',
  'lone_surrogate',
  'number_out_of_range',
  'payload_too_large',
  'json_too_deep',
  'unsupported_media_type',
];
/** What each kind of authentication answers when it refuses. */
export const AUTH_ERRORS: Record<Auth, readonly ErrorCode[]> = {
  session: ['unauthenticated'],
  admin: ['unauthenticated', 'admin_disabled'],
  ticket: [],
  none: [],
};

/** A request roomcast makes to a URL a client registered (OpenAPI's `webhooks`). */
export interface WebhookSpec {
  /** Its key under `webhooks`, and its operationId. */
  name: string;
  summary: string;
  description?: string;
  /** The JSON body roomcast POSTs. */
  body: z.ZodType;
  /** Headers roomcast sends: name → what it says. */
  headers: Record<string, string>;
  /** What each answer of the receiver makes roomcast do, by status (`2XX`, `410`, `default`, …). */
  responses: Record<string, string>;
}

/** Every described operation, by "METHOD path", and every webhook. */
export class ApiRegistry {
  private readonly byRoute = new Map<string, OperationSpec>();
  private readonly byWebhook = new Map<string, WebhookSpec>();
  private changes = 0;

  describe(op: OperationSpec): void {
    this.byRoute.set(`${op.method.toUpperCase()} ${op.path}`, op);
    this.changes++;
  }

  describeWebhook(hook: WebhookSpec): void {
    this.byWebhook.set(hook.name, hook);
    this.changes++;
  }

  operations(): OperationSpec[] {
    return [...this.byRoute.values()];
  }

  webhooks(): WebhookSpec[] {
    return [...this.byWebhook.values()];
  }

  /** Grows with every `describe`: a document made at an older version is out of date. */
  get version(): number {
    return this.changes;
  }
}

/** The process's one registry: route factories describe into it, GET /api/openapi.json reads it. */
export const apiRegistry = new ApiRegistry();

/** Describes one operation of the API, next to its route (see the top of this file). */
export const describeRoute = (op: OperationSpec): void => apiRegistry.describe(op);

/** Describes a request roomcast sends to registered URLs, next to the routes that register them. */
export const describeWebhook = (hook: WebhookSpec): void => apiRegistry.describeWebhook(hook);
