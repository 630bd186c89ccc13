import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionStore } from '../src/sessions/session-store';
import { ApiClient, type ApiResponse } from '../../testkit/api-client';
import { chat, makeRoom, makeUser, startHarness, uniqueName, type Harness, type TestRoom, type TestUser } from '../../testkit/harness';
import { waitFor } from '../../testkit/stomp';

let h: Harness;
let room: TestRoom;
let learner: TestUser;

beforeAll(async () => {
  h = await startHarness();
  room = await makeRoom(h, 1);
  learner = room.learners[0]!;
});
afterAll(async () => {
  await h.close();
});

/** Total rows in every table a send writes; a refused request must leave them all unchanged. */
async function rowCounts(): Promise<string> {
  const { rows } = await h.server.services.pool.query(
    `SELECT (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM jobs) AS jobs,
            (SELECT last_seq FROM rooms WHERE id = $1) AS last_seq`,
    [room.id],
  );
  return JSON.stringify(rows[0]);
}

async function expectRefused(res: Promise<{ status: number; body: any }>, status: number, code: string): Promise<void> {
  const before = await rowCounts();
  const r = await res;
  expect(r.status).toBe(status);
  expect(r.body).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }) });
  expect(await rowCounts()).toBe(before);
}

describe('bad input on send', () => {
  const path = (): string => `/api/rooms/${room.id}/messages`;

  it('refuses a body over 16 KiB with 413 body_too_large', async () => {
    await expectRefused(learner.api.post(path(), chat('x'.repeat(16 * 1024))), 413, 'body_too_large');
  });

  it('accepts a body of exactly 16 KiB', async () => {
    const text = 'y'.repeat(16 * 1024 - JSON.stringify({ text: '' }).length);
    const res = await learner.api.post(path(), chat(text));
    expect(res.status).toBe(201);
  });

  it('refuses a request over the request size limit with 413 payload_too_large', async () => {
    await expectRefused(learner.api.post(path(), chat('z'.repeat(100 * 1024))), 413, 'payload_too_large');
  });

  it("refuses a learner's announcement or answer (the pages show them as the instructor's word) with 403 instructor_only_kind", async () => {
    await expectRefused(learner.api.post(path(), chat('class is cancelled', { kind: 'announcement' })), 403, 'instructor_only_kind');
    await expectRefused(learner.api.post(path(), chat('the answer is 42', { kind: 'answer' })), 403, 'instructor_only_kind');
    expect((await room.instructor.api.post(path(), chat('class is on', { kind: 'announcement' }))).status).toBe(201);
  });

  it('refuses invalid JSON with 400 invalid_json', async () => {
    await expectRefused(learner.api.request('POST', path(), '{"clientMsgId": "a", '), 400, 'invalid_json');
  });

  it('refuses wrong types and missing fields with 400 invalid_request naming the field', async () => {
    const cases: Record<string, unknown>[] = [
      { ...chat('a'), body: 'not an object' },
      { ...chat('a'), kind: 'shout' },
      { ...chat('a'), audience: 'everybody' },
      { ...chat('a'), clientMsgId: 42 },
      { ...chat('a'), clientMsgId: undefined },
      { ...chat('a'), audience: 'member' },
      { ...chat('a'), recipientId: learner.id },
      { ...chat('a'), extra: true },
      [] as unknown as Record<string, unknown>,
    ];
    for (const body of cases) {
      const before = await rowCounts();
      const res = await learner.api.post(path(), body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(await rowCounts()).toBe(before);
    }
    const res = await learner.api.post(path(), { ...chat('a'), kind: 'shout' });
    expect(res.body.error.message).toMatch(/kind/);
  });

  it('refuses an unknown room with 404 room_not_found', async () => {
    await expectRefused(learner.api.post('/api/rooms/00000000-0000-4000-8000-000000000000/messages', chat('a')), 404, 'room_not_found');
    await expectRefused(learner.api.post('/api/rooms/not-a-uuid/messages', chat('a')), 404, 'room_not_found');
  });

  it('refuses a non-member with 403 not_a_member', async () => {
    const outsider = await makeUser(h, 'learner');
    await expectRefused(outsider.api.post(path(), chat('a')), 403, 'not_a_member');
  });

  it('refuses a recipient who is not in the room with 404 recipient_not_found', async () => {
    const outsider = await makeUser(h, 'learner');
    await expectRefused(learner.api.post(path(), chat('a', { audience: 'member', recipientId: outsider.id })), 404, 'recipient_not_found');
  });

  it('refuses missing, malformed, expired and revoked auth with 401 unauthenticated', async () => {
    const anonymous = new ApiClient(h.server.url);
    await expectRefused(anonymous.post(path(), chat('a')), 401, 'unauthenticated');
    await expectRefused(anonymous.request('POST', path(), JSON.stringify(chat('a')), { authorization: 'Basic abc' }), 401, 'unauthenticated');
    await expectRefused(anonymous.withToken('x'.repeat(43)).post(path(), chat('a')), 401, 'unauthenticated');

    const short = await makeUser(h, 'learner');
    await short.api.post('/api/rooms/join', { inviteCode: room.inviteCode });
    // A session made with a 1-second TTL expires in Redis like any other.
    const quick = new SessionStore(h.server.services.redis, { sessionSeconds: 1, brokerTokenSeconds: 1 });
    const expiring = await quick.create({ userId: short.id, username: short.username, displayName: short.username, role: 'learner' });
    expect((await short.api.withToken(expiring.token).get('/api/me')).status).toBe(200);
    await waitFor(async () => (await quick.get(expiring.token)) === null, 'Redis to expire the 1-second session', 5000);
    await expectRefused(short.api.withToken(expiring.token).post(path(), chat('a')), 401, 'unauthenticated');

    await short.api.post('/api/auth/logout');
    await expectRefused(short.api.post(path(), chat('a')), 401, 'unauthenticated');
  });
});

/** The message body as sent in a raw request: `body` is spliced in as JSON text, unparsed. */
function rawSend(bodyJson: string): string {
  const envelope = JSON.stringify({ ...chat('placeholder'), body: '@BODY@' });
  return envelope.replace('"@BODY@"', bodyJson);
}

/** JSON text with sorted keys, built from own properties only (so `__proto__` keys count). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

describe('JSON that parses but cannot be kept exactly', () => {
  const path = (): string => `/api/rooms/${room.id}/messages`;
  const nested = (depth: number, leaf = '1'): string => '{"a":'.repeat(depth) + leaf + '}'.repeat(depth);

  /** Sends the raw body, then checks the stored copy and the resync copy equal it key for key. */
  async function expectRoundTrip(bodyJson: string): Promise<void> {
    const res = await learner.api.request('POST', path(), rawSend(bodyJson));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const sent = canonical(JSON.parse(bodyJson));
    expect(canonical(res.body.message.body)).toBe(sent);
    const page = await learner.api.get(`${path()}?after=${res.body.seq - 1}&limit=1`);
    expect(canonical(page.body.messages[0].body)).toBe(sent);
  }

  it('refuses U+0000 in a string or a key with 400 nul_character', async () => {
    await expectRefused(learner.api.request('POST', path(), rawSend('{"text":"a\\u0000b"}')), 400, 'nul_character');
    await expectRefused(learner.api.request('POST', path(), rawSend('{"a\\u0000":"b"}')), 400, 'nul_character');
    await expectRefused(learner.api.request('POST', path(), rawSend('{"list":[{"deep":["x\\u0000"]}]}')), 400, 'nul_character');
  });

  it('refuses a lone surrogate in a string or a key with 400 lone_surrogate, and keeps a real pair', async () => {
    for (const body of ['{"text":"\\ud800"}', '{"text":"a\\udc00b"}', '{"\\udbff":"x"}', '{"text":"\\ude00\\ud83d"}']) {
      await expectRefused(learner.api.request('POST', path(), rawSend(body)), 400, 'lone_surrogate');
    }
    await expectRoundTrip('{"text":"\\ud83d\\ude00 and \\u00e9"}');
  });

  it('refuses bytes that are not UTF-8 with 400 invalid_utf8, instead of storing U+FFFD in their place', async () => {
    const [head, tail] = rawSend('{"text":"@"}').split('@') as [string, string];
    for (const bad of [[0xff, 0xfe], [0xc3], [0xed, 0xa0, 0x80]]) {
      const res = await fetch(`${h.server.url}${path()}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${learner.token}` },
        body: Buffer.concat([Buffer.from(head), Buffer.from(bad), Buffer.from(tail)]),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_utf8');
    }
    await expectRoundTrip('{"text":"caf\u00e9 \u4e2d"}');
  });

  it('refuses nesting deep enough to overflow a recursive walk with 413 json_too_deep', async () => {
    // About 5,000 levels in under 16 KiB: before the guard this overflowed the stack (500).
    await expectRefused(learner.api.request('POST', path(), rawSend(nested(2500))), 413, 'json_too_deep');
    await expectRefused(learner.api.request('POST', path(), rawSend(`{"a":${'['.repeat(5000)}${']'.repeat(5000)}}`)), 413, 'json_too_deep');
    // The request object is level 1, so the message body may nest 31 levels, not 32.
    await expectRefused(learner.api.request('POST', path(), rawSend(nested(32))), 413, 'json_too_deep');
    await expectRoundTrip(nested(31));
  });

  it('refuses a 20 KB deeply nested body with 413', async () => {
    const body = nested(3500);
    expect(body.length).toBeGreaterThan(20_000);
    const res = learner.api.request('POST', path(), rawSend(body));
    await expectRefused(res, 413, 'json_too_deep');
  });

  it('refuses numbers beyond a double with 400 number_out_of_range, and keeps big finite ones', async () => {
    for (const n of ['1e400', '-1e400', '123456789e999']) {
      await expectRefused(learner.api.request('POST', path(), rawSend(`{"n":${n}}`)), 400, 'number_out_of_range');
    }
    await expectRoundTrip('{"big":1.7976931348623157e308,"small":5e-324,"int":9007199254740993,"neg":-1e300}');
  });

  it('keeps a __proto__ key at any depth instead of dropping it', async () => {
    await expectRoundTrip('{"__proto__":{"isAdmin":true},"text":"hi","inner":{"__proto__":[1,2]},"constructor":{"prototype":1}}');
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('refuses a body that is a JSON string, number or array, and a non-JSON content type', async () => {
    await expectRefused(learner.api.request('POST', path(), '"just a string"'), 400, 'invalid_json');
    await expectRefused(learner.api.request('POST', path(), '42'), 400, 'invalid_json');
    await expectRefused(learner.api.request('POST', path(), JSON.stringify([chat('a')])), 400, 'invalid_request');
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      await expectRefused(learner.api.request('POST', path(), JSON.stringify(chat('a')), { 'content-type': type }), 415, 'unsupported_media_type');
    }
  });
});

describe('the same checks on every JSON route', () => {
  it('refuses U+0000 in a username, password, room name or invite code with 400 nul_character', async () => {
    const anonymous = new ApiClient(h.server.url);
    const login = await anonymous.post('/api/auth/login', { username: `${learner.username}\u0000`, password: 'x' });
    expect([login.status, login.body.error.code]).toEqual([400, 'nul_character']);
    const pw = await anonymous.post('/api/auth/login', { username: learner.username, password: 'a\u0000b' });
    expect([pw.status, pw.body.error.code]).toEqual([400, 'nul_character']);
    const name = await room.instructor.api.post('/api/rooms', { name: 'room\u0000' });
    expect([name.status, name.body.error.code]).toEqual([400, 'nul_character']);
    const join = await learner.api.post('/api/rooms/join', { inviteCode: 'ABCD\u0000' });
    expect([join.status, join.body.error.code]).toEqual([400, 'nul_character']);
  });

  it('refuses lone surrogates, deep nesting and huge numbers outside messages too', async () => {
    const anonymous = new ApiClient(h.server.url);
    const surrogate = await anonymous.request('POST', '/api/auth/login', '{"username":"\\ud800","password":"x"}');
    expect([surrogate.status, surrogate.body.error.code]).toEqual([400, 'lone_surrogate']);
    const deep = await room.instructor.api.request('POST', '/api/rooms', `{"name":${'['.repeat(6000)}${']'.repeat(6000)}}`);
    expect([deep.status, deep.body.error.code]).toEqual([413, 'json_too_deep']);
    const huge = await learner.api.request('POST', '/api/rooms/join', '{"inviteCode":1e999}');
    expect([huge.status, huge.body.error.code]).toEqual([400, 'number_out_of_range']);
  });

  it('refuses a body that does not decode (bad Content-Encoding, unknown charset) with a 4xx', async () => {
    const join = JSON.stringify({ inviteCode: 'ABCDEFGH' });
    const send = (headers: Record<string, string>, body: Uint8Array | string): Promise<ApiResponse> =>
      learner.api.request('POST', '/api/rooms/join', body as string, { 'content-type': 'application/json', ...headers });
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const res = await send({ 'content-encoding': encoding }, join);
      expect([res.status, res.body.error.code], encoding).toEqual([400, 'invalid_request']);
    }
    const unknown = await send({ 'content-encoding': 'compress' }, join);
    expect([unknown.status, unknown.body.error.code]).toEqual([415, 'unsupported_media_type']);
    const latin1 = await send({ 'content-type': 'application/json; charset=latin1' }, join);
    expect([latin1.status, latin1.body.error.code]).toEqual([415, 'unsupported_media_type']);
    // A real gzip body is read like any other; a bomb is cut off at the request size limit.
    expect((await send({ 'content-encoding': 'gzip' }, gzipSync(join))).body.error.code).toBe('invite_not_found');
    const bomb = await send({ 'content-encoding': 'gzip' }, gzipSync(Buffer.alloc(10_000_000, 32)));
    expect([bomb.status, bomb.body.error.code]).toEqual([413, 'payload_too_large']);
  });

  it('still accepts requests without a body', async () => {
    const extra = await makeUser(h, 'learner');
    expect((await extra.api.post('/api/broker-token')).status).toBe(200);
    expect((await extra.api.post('/api/auth/logout')).status).toBe(204);
  });
});

describe('other routes', () => {
  it('answers unknown routes with 404 not_found in the error shape', async () => {
    for (const res of [await h.api.get('/nope'), await h.api.get('/api/nope'), await learner.api.post('/api/rooms/x/y')]) {
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
  });

  it('refuses a wrong password with 401 invalid_credentials and the same error for unknown users', async () => {
    const wrong = await h.api.post('/api/auth/login', { username: learner.username, password: 'nope-nope' });
    // A fresh unknown name: the login limits count failures per name and address across runs.
    const unknown = await h.api.post('/api/auth/login', { username: uniqueName('nobody'), password: 'nope-nope' });
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    expect(wrong.body).toEqual(unknown.body);
    expect(wrong.body.error.code).toBe('invalid_credentials');
  });

  it('lets only instructors create rooms, and refuses a bad invite code', async () => {
    const res = await learner.api.post('/api/rooms', { name: 'mine' });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('forbidden');
    const join = await learner.api.post('/api/rooms/join', { inviteCode: 'ZZZZZZZZ' });
    expect(join.status).toBe(404);
    expect(join.body.error.code).toBe('invite_not_found');
  });
});
