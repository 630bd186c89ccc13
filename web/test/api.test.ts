/**
 * RoomcastApi against a scripted fetch: the request each method makes, and how every kind of
 * failure becomes an ApiError (the server's code, or one that fits the status) or a NetworkError,
 * with the server's Retry-After in milliseconds.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RoomcastApi, retryAfterMsOf } from '../src/client/api';
import { ApiError, NetworkError, isRetriable } from '../src/client/errors';
import { BASE_URL, FakeFetch, apiError, json, type Reply } from './fake-fetch';

const NOW = Date.parse('2026-03-02T09:00:00.000Z');
const ROOM = 'room/1 ü';
const ENCODED = encodeURIComponent(ROOM);

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(NOW);
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('retryAfterMsOf', () => {
  it('is null when the header is absent', () => {
    expect(retryAfterMsOf(null, NOW)).toBeNull();
  });

  it.each([
    ['120', 120_000],
    ['0', 0],
    [' 7 ', 7000],
    ['3600', 3_600_000],
  ])('reads delay-seconds %j', (header, ms) => {
    expect(retryAfterMsOf(header, NOW)).toBe(ms);
  });

  it.each([
    ['IMF-fixdate', 'Mon, 02 Mar 2026 09:00:30 GMT', 30_000],
    ['obsolete RFC 850 date', 'Monday, 02-Mar-26 09:01:00 GMT', 60_000],
    ['obsolete asctime date, read as GMT', 'Mon Mar  2 09:00:45 2026', 45_000],
  ])('reads an HTTP date (%s) as the time left until it', (_format, header, ms) => {
    expect(retryAfterMsOf(header, NOW)).toBe(ms);
  });

  it('reads a date already past as no wait at all', () => {
    expect(retryAfterMsOf('Mon, 02 Mar 2026 08:59:00 GMT', NOW)).toBe(0);
  });

  it('measures a date from the current time by default', () => {
    expect(retryAfterMsOf('Mon, 02 Mar 2026 09:00:10 GMT')).toBe(10_000);
  });

  it.each(['', '   ', 'soon', '5s', '1e3', '0x10', '1.5', '-1', '+5', 'abc 12', '2026-03-02T09:00:30Z'])('is null for the unreadable %j', (header) => {
    expect(retryAfterMsOf(header, NOW)).toBeNull();
  });
});

describe('requests', () => {
  const ok = json(200, { ok: true });
  const noContent: Reply = { status: 204 };

  it('log in without a session, then send the session token with every request', async () => {
    const server = new FakeFetch()
      .on('POST', '/api/auth/login', json(200, { token: 'tok-1', expiresAt: '2026-03-03T09:00:00.000Z', user: { id: 'u-1' } }))
      .on('GET', '/api/me', json(200, { user: { id: 'u-1' }, rooms: [] }));
    const api = server.api({ token: null });
    await expect(api.login('ben', 'secret')).resolves.toMatchObject({ token: 'tok-1' });
    expect(api.token).toBe('tok-1');
    await api.me();
    const [login, me] = server.requests;
    expect(login).toMatchObject({ method: 'POST', url: `${BASE_URL}/api/auth/login`, body: { username: 'ben', password: 'secret' } });
    expect(login?.headers).toEqual({ 'content-type': 'application/json' });
    expect(me?.headers).toEqual({ authorization: 'Bearer tok-1' });
  });

  it('logout forgets the token once the server has revoked the session', async () => {
    const server = new FakeFetch().on('POST', '/api/auth/logout', noContent);
    const api = server.api();
    await expect(api.logout()).resolves.toBeUndefined();
    expect(server.requests[0]?.headers).toEqual({ authorization: 'Bearer session-token' });
    expect(api.token).toBeNull();
  });

  it.each([
    ['me', (api: RoomcastApi) => api.me(), 'GET', '/api/me', undefined],
    ['brokerToken', (api: RoomcastApi) => api.brokerToken(), 'POST', '/api/broker-token', undefined],
    ['joinRoom', (api: RoomcastApi) => api.joinRoom('ABC-123'), 'POST', '/api/rooms/join', { inviteCode: 'ABC-123' }],
    ['room', (api: RoomcastApi) => api.room(ROOM), 'GET', `/api/rooms/${ENCODED}`, undefined],
    ['subscriptions', (api: RoomcastApi) => api.subscriptions(ROOM), 'GET', `/api/rooms/${ENCODED}/subscriptions`, undefined],
    ['presenceBeat', (api: RoomcastApi) => api.presenceBeat(ROOM), 'POST', `/api/rooms/${ENCODED}/presence`, undefined],
    ['presence', (api: RoomcastApi) => api.presence(ROOM), 'GET', `/api/rooms/${ENCODED}/presence`, undefined],
    ['leave', (api: RoomcastApi) => api.leave(ROOM), 'DELETE', `/api/rooms/${ENCODED}/presence`, undefined],
    [
      'send',
      (api: RoomcastApi) => api.send(ROOM, { clientMsgId: 'c-1', audience: 'everyone', kind: 'chat', body: { text: 'hi' } }),
      'POST',
      `/api/rooms/${ENCODED}/messages`,
      { clientMsgId: 'c-1', audience: 'everyone', kind: 'chat', body: { text: 'hi' } },
    ],
  ] as const)('%s: %s %s', async (_name, call, method, path, body) => {
    const server = new FakeFetch().on(method, path, ok);
    await call(server.api());
    expect(server.unrouted).toEqual([]);
    const [request] = server.requests;
    expect(request).toMatchObject({ method, url: `${BASE_URL}${path}`, keepalive: false });
    expect(request?.body).toEqual(body);
    // A JSON content type exactly when there is a body: the server answers 415 to anything else.
    expect(request?.headers).toEqual(body === undefined ? { authorization: 'Bearer session-token' } : { authorization: 'Bearer session-token', 'content-type': 'application/json' });
  });

  it('resync puts both cursors and the page size in the query', async () => {
    const page = { messages: [], nextAfter: 40, hasMore: false, through: 42, broadcastThrough: 17 };
    const server = new FakeFetch().on('GET', `/api/rooms/${ENCODED}/messages`, json(200, page));
    await expect(server.api().messagesAfter(ROOM, { after: 40, personalAfter: 12 }, 200)).resolves.toEqual(page);
    expect(server.requests[0]?.query).toEqual({ after: '40', personalAfter: '12', limit: '200' });
  });

  it('leave can outlive the page: keepalive is set when asked for', async () => {
    const server = new FakeFetch().on('DELETE', `/api/rooms/${ENCODED}/presence`, noContent);
    await server.api().leave(ROOM, { keepalive: true });
    expect(server.requests[0]?.keepalive).toBe(true);
  });

  it('answers with nothing for a 204', async () => {
    const server = new FakeFetch().on('POST', `/api/rooms/${ENCODED}/presence`, noContent);
    await expect(server.api().presenceBeat(ROOM)).resolves.toBeFalsy();
  });

  it('joins the base URL and the path with one slash, and uses the page origin when the base URL is empty', async () => {
    const server = new FakeFetch().on('GET', '/api/me', ok);
    await server.api({ baseUrl: 'https://class.test/' }).me();
    await server.api({ baseUrl: '' }).me();
    expect(server.requests.map((r) => r.url)).toEqual(['https://class.test/api/me', '/api/me']);
  });

  it('calls the global fetch as a function of the global object by default (browsers refuse any other receiver)', async () => {
    const receivers: unknown[] = [];
    vi.stubGlobal(
      'fetch',
      function (this: unknown) {
        receivers.push(this);
        return Promise.resolve(new Response('{}', { status: 200 }));
      },
    );
    await new RoomcastApi({ baseUrl: BASE_URL }).me();
    expect(receivers).toEqual([globalThis]);
  });
});

describe('errors', () => {
  /** The error `me()` fails with when the server answers `reply`. */
  const failureOf = async (reply: Reply): Promise<unknown> => {
    const server = new FakeFetch().on('GET', '/api/me', reply);
    return server.api().me().then(
      () => expect.unreachable('the request should have failed'),
      (err: unknown) => err,
    );
  };

  it('carries the server status, code and message', async () => {
    const err = await failureOf(apiError(403, 'not_a_member', 'you are not a member of this room'));
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 403, code: 'not_a_member', message: 'you are not a member of this room', retryAfterMs: null });
  });

  it('uses the code for the message when the server gave none', async () => {
    expect(await failureOf(json(409, { error: { code: 'idempotency_conflict' } }))).toMatchObject({ code: 'idempotency_conflict', message: 'idempotency_conflict' });
  });

  it('reads Retry-After in seconds', async () => {
    const err = await failureOf(apiError(429, 'too_many_attempts', 'slow down', { 'retry-after': '30' }));
    expect(err).toMatchObject({ status: 429, code: 'too_many_attempts', retryAfterMs: 30_000 });
    expect(isRetriable(err)).toBe(true);
  });

  it('reads Retry-After as an HTTP date, from now', async () => {
    const err = await failureOf(apiError(503, 'service_unavailable', 'busy', { 'retry-after': 'Mon, 02 Mar 2026 09:02:00 GMT' }));
    expect(err).toMatchObject({ status: 503, retryAfterMs: 120_000 });
  });

  it('ignores an unreadable Retry-After', async () => {
    expect(await failureOf(apiError(503, 'service_unavailable', 'busy', { 'retry-after': 'later' }))).toMatchObject({ retryAfterMs: null });
  });

  it('keeps the words of a code newer than this client, as invalid_request', async () => {
    expect(await failureOf(apiError(422, 'lecture_over', 'this lecture has ended'))).toMatchObject({ status: 422, code: 'invalid_request', message: 'this lecture has ended' });
  });

  it('does not take an inherited property name for a known code', async () => {
    expect(await failureOf(apiError(400, 'constructor', 'odd'))).toMatchObject({ code: 'invalid_request', message: 'odd' });
  });

  it.each([
    ['a 401 with a code it does not know', apiError(401, 'session_expired', 'gone'), 401, 'unauthenticated', 'log in again'],
    ['a 401 without our body', { status: 401, text: 'Unauthorized' }, 401, 'unauthenticated', 'log in again'],
    ['a 404 page', { status: 404, text: '<h1>Not Found</h1>', headers: { 'content-type': 'text/html' } }, 404, 'not_found', 'not found'],
    ['a proxy 502 page', { status: 502, text: '<html>Bad Gateway</html>', headers: { 'content-type': 'text/html' } }, 502, 'service_unavailable', 'the server answered 502; retrying'],
    ['a 503 with an unknown code', apiError(503, 'draining', 'draining'), 503, 'service_unavailable', 'the server answered 503; retrying'],
    ['a 418 without a body', { status: 418 }, 418, 'invalid_request', 'the server answered 418'],
    ['an error field that is a string', json(400, { error: 'bad' }), 400, 'invalid_request', 'the server answered 400'],
    ['JSON that is not an object', json(400, ['bad']), 400, 'invalid_request', 'the server answered 400'],
  ] as const)('maps %s by its status', async (_what, reply, status, code, message) => {
    const err = await failureOf(reply);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status, code, message });
  });

  it('a 401 is fatal and not retried, a 5xx page is retried', async () => {
    expect(isRetriable(await failureOf({ status: 401, text: '' }))).toBe(false);
    expect(isRetriable(await failureOf({ status: 502, text: 'Bad Gateway' }))).toBe(true);
  });

  it('no answer at all is a NetworkError naming the request, with the cause kept', async () => {
    const err = await failureOf('network');
    expect(err).toBeInstanceOf(NetworkError);
    expect(err).toMatchObject({ code: 'network', message: 'GET /api/me: no answer from the server' });
    expect((err as NetworkError).cause).toBeInstanceOf(TypeError);
    expect(isRetriable(err)).toBe(true);
  });

  it('an answer cut off mid-body is a NetworkError too', async () => {
    const err = await failureOf('cut-off');
    expect(err).toBeInstanceOf(NetworkError);
    expect(err).toMatchObject({ code: 'network', message: 'GET /api/me: the answer was cut off' });
  });
});
