/**
 * The API's description (GET /api/openapi.json) against the server itself: it is valid OpenAPI
 * 3.1, it names every route the app mounts and no other, and what a whole session really gets
 * back matches it, body and status, for every operation it describes.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { simpleParser } from 'mailparser';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenApiDocument } from '../src/http/openapi';
import { unsubscribeUrl } from '../src/mail/mail-links';
import { PASSWORD, chat, freshAddress, makeUser, startHarness, uniqueName, type Harness, type TestUser } from '../../testkit/harness';
import { readMailbox } from '../../testkit/mailbox';
import { waitFor } from '../../testkit/stomp';
import { testConfig } from '../../testkit/test-config';

const ADMIN_TOKEN = 'openapi-test-admin-token-0123456789';

let h: Harness;
let doc: OpenApiDocument;

beforeAll(async () => {
  h = await startHarness({ config: testConfig({ ROOMCAST_ADMIN_TOKEN: ADMIN_TOKEN }) });
  const res = await fetch(`${h.server.url}/api/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as OpenApiDocument;
});
afterAll(() => h.close());

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head' | 'options' | 'trace';

interface RouterLayer {
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: RouterLayer[] };
  rawPath?: unknown;
}

/**
 * "METHOD /path" of every route the app mounts, found by walking Express 5's router stack: a
 * layer with a `route` is a route (its methods, its path under the mounts above it); a layer
 * whose handle has a `stack` is a router mounted at the layer's path. Paths come out in the
 * document's form, `{param}` for `:param`.
 */
function mountedRoutes(stack: RouterLayer[], prefix = ''): string[] {
  const found: string[] = [];
  for (const layer of stack) {
    if (layer.route) {
      const paths = Array.isArray(layer.route.path) ? (layer.route.path as unknown[]) : [layer.route.path];
      for (const p of paths) {
        if (typeof p !== 'string') throw new Error(`a route with a non-string path (${String(p)}) under ${prefix || '/'}: describe it by hand`);
        for (const method of Object.keys(layer.route.methods)) {
          if (method === '_all') throw new Error(`router.all(${p}) under ${prefix || '/'}: describe each method instead`);
          found.push(`${method.toUpperCase()} ${`${prefix}${p}`.replace(/:(\w+)/g, '{$1}')}`);
        }
      }
    } else if (layer.handle?.stack) {
      const mount = layer.rawPath;
      if (typeof mount !== 'string') throw new Error(`a router mounted at ${String(mount)}: mount routers at plain paths`);
      found.push(...mountedRoutes(layer.handle.stack, `${prefix}${mount === '/' ? '' : mount}`));
    }
  }
  return found;
}

const documentedRoutes = (): string[] =>
  Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).filter((k) => ['get', 'put', 'post', 'delete', 'patch'].includes(k)).map((m) => `${m.toUpperCase()} ${path}`));

interface Answer {
  status: number;
  headers: Headers;
  /** Parsed JSON, the text of any other body, or null for none. */
  body: any;
}

interface CallOptions {
  /** A session token, or the admin token with `admin`. */
  token?: string;
  params?: Record<string, string>;
  query?: Record<string, string>;
  json?: unknown;
  /** A body sent as it is, as JSON unless `headers` says otherwise. */
  raw?: string;
  form?: Record<string, string>;
  headers?: Record<string, string>;
}

/**
 * Calls the operation "METHOD /path/{param}" and checks the answer against its description:
 * the status must be one it lists, the media type one it lists for that status, a JSON body
 * must match that status's schema (ajv, JSON Schema 2020-12, the document's own components), a
 * status without content must come without a body, and a 429 or 503 must say Retry-After.
 */
class Contract {
  readonly called = new Set<string>();
  private readonly ajv = new Ajv2020({ allErrors: true, strict: true });
  private readonly validators = new Map<string, ValidateFunction>();
  private static readonly BASE = 'https://roomcast.invalid/openapi.json';

  constructor(private readonly document: OpenApiDocument) {
    addFormats(this.ajv);
    // The components as one schema of their own, and every reference pointed at it.
    this.ajv.addSchema({ $id: Contract.BASE, $defs: this.rebase(document.components.schemas) as Record<string, unknown> });
  }

  private rebase(schema: unknown): unknown {
    if (Array.isArray(schema)) return schema.map((s) => this.rebase(s));
    if (schema === null || typeof schema !== 'object') return schema;
    return Object.fromEntries(
      Object.entries(schema).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' ? v.replace('#/components/schemas/', `${Contract.BASE}#/$defs/`) : this.rebase(v)]),
    );
  }

  async call(op: string, o: CallOptions = {}): Promise<Answer> {
    const [verb, template] = op.split(' ') as [string, string];
    const path = template.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(o.params?.[name] ?? `missing-${name}`));
    const headers: Record<string, string> = { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) };
    let body: string | URLSearchParams | undefined;
    if (o.json !== undefined || o.raw !== undefined) {
      headers['content-type'] = 'application/json';
      body = o.raw ?? JSON.stringify(o.json);
    } else if (o.form) {
      body = new URLSearchParams(o.form);
    }
    const res = await fetch(`${h.server.url}${path}${o.query ? `?${new URLSearchParams(o.query)}` : ''}`, { method: verb, headers: { ...headers, ...o.headers }, body });
    const media = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    // A stream stays open: read up to its first event, then hang up.
    const text = media === 'text/event-stream' ? await firstEvent(res) : await res.text();
    const answer: Answer = { status: res.status, headers: res.headers, body: media === 'application/json' ? JSON.parse(text) : text || null };
    this.check(verb.toLowerCase() as Method, template, answer, media);
    this.called.add(op);
    return answer;
  }

  private check(method: Method, template: string, a: Answer, media: string): void {
    const where = `${method.toUpperCase()} ${template} → ${a.status} ${JSON.stringify(a.body)?.slice(0, 300)}`;
    const operation = this.document.paths[template]?.[method] as { responses: Record<string, { content?: Record<string, unknown> }> } | undefined;
    expect(operation, `${where}: not in the document`).toBeDefined();
    const response = operation!.responses[String(a.status)];
    expect(response, `${where}: the document lists no ${a.status} for it`).toBeDefined();
    if (a.status === 429 || a.status === 503) expect(a.headers.get('retry-after'), `${where}: no Retry-After`).toMatch(/^\d+$/);
    if (!response!.content) {
      expect(a.body, `${where}: a body where the document says none`).toBeNull();
      return;
    }
    expect(Object.keys(response!.content), `${where}: media type ${media}`).toContain(media);
    if (media !== 'application/json') return;
    const key = `${method} ${template} ${a.status}`;
    let validate = this.validators.get(key);
    if (!validate) {
      validate = this.ajv.compile(this.rebase((response!.content[media] as { schema: object }).schema) as object);
      this.validators.set(key, validate);
    }
    expect(validate(a.body) ? [] : validate.errors, where).toEqual([]);
  }
}

/** An event stream's beginning, up to its first event; then the connection is closed. */
async function firstEvent(res: Response): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!/\nevent: .+\ndata: .+\n\n/.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text;
}

/** The links to `path` in every mail `email` got, newest first: each one's token. */
async function mailedTokens(email: string, path: string): Promise<string[]> {
  const tokens: string[] = [];
  for (const { raw } of readMailbox(h.config, email)) {
    const text = (await simpleParser(raw)).text ?? '';
    for (const m of text.matchAll(new RegExp(`/api${path}\\?token=([\\w-]+)`, 'g'))) tokens.push(m[1]!);
  }
  return tokens;
}

/** Waits for a mail to `email` with a link to `path` whose token is not in `seen`. */
async function newMailedToken(email: string, path: string, seen: readonly string[] = []): Promise<string> {
  let token: string | undefined;
  await waitFor(async () => (token = (await mailedTokens(email, path)).find((t) => !seen.includes(t))) !== undefined, `a mail to ${email} with a link to ${path}`, 20_000);
  return token!;
}

describe('the OpenAPI document', () => {
  it('is served without a login, and is valid OpenAPI 3.1', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc as unknown as Record<string, unknown>);
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('describes every route the app server mounts, and only those', () => {
    const mounted = mountedRoutes(h.server.app.router.stack as unknown as RouterLayer[]).sort();
    const documented = documentedRoutes().sort();
    expect(new Set(mounted).size, 'a route mounted twice').toBe(mounted.length);
    expect(
      mounted.filter((r) => !documented.includes(r)),
      'mounted but not described: add describeRoute({...}) beside the route (server/src/http/api-spec.ts)',
    ).toEqual([]);
    expect(
      documented.filter((r) => !mounted.includes(r)),
      'described but not mounted',
    ).toEqual([]);
    // Sanity: the walk found the routers under /api and the ones at the root.
    expect(mounted).toContain('POST /api/rooms/{roomId}/messages');
    expect(mounted).toContain('GET /healthz');
  });

  it('gives each operation a unique id, its security, and every path parameter', () => {
    const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => (op as { operationId: string }).operationId));
    expect(new Set(ids).size).toBe(ids.length);
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item) as [string, { security?: unknown; parameters?: { name: string; in: string }[] }][]) {
        expect(op.security, `${method} ${path}`).toBeDefined();
        const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        expect((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort(), `${method} ${path}`).toEqual(inPath.sort());
      }
    }
  });
});

describe('what the server answers', () => {
  it('matches the document, for every operation, through a whole session with its errors', async () => {
    const api = new Contract(doc);
    const tokenOf = (u: TestUser): string => u.token;

    // Operations.
    await api.call('GET /healthz');
    await api.call('GET /readyz');
    expect((await api.call('GET /metrics')).body).toContain('# HELP');
    await api.call('GET /api/openapi.json');

    // Logging in, and what refuses a login.
    const teacher = await makeUser(h, 'instructor');
    const ann = await makeUser(h, 'learner');
    const bob = await makeUser(h, 'learner');
    const stranger = await makeUser(h, 'learner');
    const from = { 'x-forwarded-for': freshAddress() };
    expect((await api.call('POST /api/auth/login', { json: { username: ann.username, password: PASSWORD }, headers: from })).status).toBe(200);
    expect((await api.call('POST /api/auth/login', { json: { username: ann.username }, headers: from })).status).toBe(400);
    expect((await api.call('POST /api/auth/login', { raw: '{"username":', headers: from })).body.error.code).toBe('invalid_json');
    expect((await api.call('POST /api/auth/login', { raw: 'username=a', headers: { ...from, 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await api.call('POST /api/auth/login', { raw: `${'['.repeat(40)}${']'.repeat(40)}`, headers: from })).body.error.code).toBe('json_too_deep');
    const guessed = uniqueName('nobody');
    const refusals: number[] = [];
    for (let i = 0; i < 10 && !refusals.includes(429); i++) {
      refusals.push((await api.call('POST /api/auth/login', { json: { username: guessed, password: 'wrong-password' }, headers: from })).status);
    }
    expect(refusals).toContain(401);
    expect(refusals.at(-1)).toBe(429);

    await api.call('GET /api/me', { token: tokenOf(ann) });
    expect((await api.call('GET /api/me')).body.error.code).toBe('unauthenticated');
    expect((await api.call('GET /api/me', { token: 'x'.repeat(40) })).status).toBe(401);
    await api.call('POST /api/broker-token', { token: tokenOf(ann) });

    // A room: created by its instructor, joined by two learners.
    expect((await api.call('POST /api/rooms', { token: tokenOf(ann), json: { name: 'not mine to make' } })).body.error.code).toBe('forbidden');
    expect((await api.call('POST /api/rooms', { token: tokenOf(teacher), json: { name: '' } })).body.error.code).toBe('invalid_request');
    const created = await api.call('POST /api/rooms', { token: tokenOf(teacher), json: { name: uniqueName('room') } });
    expect(created.status).toBe(201);
    const room = created.body.room as { id: string; inviteCode: string };
    const roomId = { roomId: room.id };
    for (const learner of [ann, bob]) expect((await api.call('POST /api/rooms/join', { token: tokenOf(learner), json: { inviteCode: room.inviteCode } })).status).toBe(200);
    expect((await api.call('POST /api/rooms/join', { token: tokenOf(ann), json: { inviteCode: room.inviteCode } })).status).toBe(200);
    expect((await api.call('POST /api/rooms/join', { token: tokenOf(stranger), json: { inviteCode: 'NOSUCHCODE' } })).body.error.code).toBe('invite_not_found');
    for (const who of [teacher, ann]) {
      await api.call('GET /api/rooms', { token: tokenOf(who) });
      await api.call('GET /api/rooms/{roomId}', { token: tokenOf(who), params: roomId });
      await api.call('GET /api/rooms/{roomId}/subscriptions', { token: tokenOf(who), params: roomId });
      await api.call('GET /api/me', { token: tokenOf(who) });
    }
    expect((await api.call('GET /api/rooms/{roomId}', { token: tokenOf(ann), params: roomId })).body.room.inviteCode).toBeUndefined();
    expect((await api.call('GET /api/rooms/{roomId}', { token: tokenOf(stranger), params: roomId })).body.error.code).toBe('not_a_member');
    expect((await api.call('GET /api/rooms/{roomId}', { token: tokenOf(ann), params: { roomId: '00000000-0000-4000-8000-000000000000' } })).body.error.code).toBe('room_not_found');
    expect((await api.call('GET /api/rooms/{roomId}', { token: tokenOf(ann), params: { roomId: 'not-a-room' } })).status).toBe(404);

    // Messages of each audience, a replay, and what refuses a send.
    const send = (who: TestUser, body: Record<string, unknown>): Promise<Answer> => api.call('POST /api/rooms/{roomId}/messages', { token: tokenOf(who), params: roomId, json: body });
    const hello = chat('hello everyone');
    expect((await send(teacher, hello)).status).toBe(201);
    const replay = await send(teacher, hello);
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
    expect((await send(teacher, { ...hello, body: { text: 'other content' } })).body.error.code).toBe('idempotency_conflict');
    expect((await send(ann, chat('a question', { audience: 'instructors', kind: 'question' }))).status).toBe(201);
    expect((await send(teacher, chat('just for ann', { audience: 'member', recipientId: ann.id, kind: 'answer' }))).status).toBe(201);
    expect((await send(teacher, chat('an announcement', { kind: 'announcement', body: { text: 'exam friday', urgent: true } }))).status).toBe(201);
    expect((await send(ann, chat('an announcement', { kind: 'announcement' }))).body.error.code).toBe('instructor_only_kind');
    expect((await send(teacher, chat('to a stranger', { audience: 'member', recipientId: stranger.id }))).body.error.code).toBe('recipient_not_found');
    expect((await send(teacher, chat('to nobody', { audience: 'member' }))).body.error.details).toEqual([expect.objectContaining({ path: 'recipientId' })]);
    expect((await send(ann, chat('x'.repeat(17 * 1024)))).body.error.code).toBe('body_too_large');
    expect((await send(ann, chat('nul \u0000'))).body.error.code).toBe('nul_character');
    expect((await send(stranger, chat('let me in'))).body.error.code).toBe('not_a_member');

    // Resync, a page at a time, as the instructor and as a learner.
    const resync = (who: TestUser, query: Record<string, string>): Promise<Answer> => api.call('GET /api/rooms/{roomId}/messages', { token: tokenOf(who), params: roomId, query });
    const firstPage = await resync(teacher, { limit: '2' });
    expect([firstPage.body.messages.length, firstPage.body.hasMore, firstPage.body.broadcastThrough]).toEqual([2, true, null]);
    expect((await resync(teacher, { after: String(firstPage.body.nextAfter) })).body.hasMore).toBe(false);
    expect((await resync(ann, {})).body.messages.map((m: { audience: string }) => m.audience)).toEqual(['everyone', 'instructors', 'member', 'everyone']);
    expect((await resync(bob, { after: '0', personalAfter: '0' })).body.messages).toHaveLength(2);
    expect((await resync(ann, { limit: '0' })).body.error.code).toBe('invalid_request');
    expect((await resync(ann, { since: '1' })).status).toBe(400);

    // Event streams (SSE): a ticket each, used once.
    const ticket = await api.call('POST /api/events/tickets', { token: tokenOf(ann), json: { roomId: room.id } });
    const stream = await api.call('GET /api/rooms/{roomId}/events/stream', { params: roomId, query: { ticket: ticket.body.ticket }, headers: { 'last-event-id': '0.0' } });
    expect(stream.body).toContain('event: resume');
    expect((await api.call('GET /api/rooms/{roomId}/events/stream', { params: roomId, query: { ticket: ticket.body.ticket } })).body.error.code).toBe('invalid_ticket');
    const anyRoom = await api.call('POST /api/events/tickets', { token: tokenOf(bob) });
    expect((await api.call('GET /api/events/stream', { query: { ticket: anyRoom.body.ticket } })).body).toContain('event: resume');
    expect((await api.call('GET /api/events/stream', { query: { ticket: 'made-up' } })).status).toBe(401);
    expect((await api.call('POST /api/events/tickets', { token: tokenOf(stranger), json: { roomId: room.id } })).body.error.code).toBe('not_a_member');

    // Webhooks: an instructor's endpoint, delivered to a receiver of this test's own.
    const received: string[] = [];
    const receiver = http.createServer((req, res) => {
      received.push(String(req.headers['webhook-id']));
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const hooks = (p: Partial<CallOptions>, who = teacher): CallOptions => ({ token: tokenOf(who), params: roomId, ...p });
      expect((await api.call('POST /api/rooms/{roomId}/webhooks', hooks({ json: { url: hookUrl, eventTypes: ['message.created'] } }, ann))).body.error.code).toBe('forbidden');
      expect((await api.call('POST /api/rooms/{roomId}/webhooks', hooks({ json: { url: 'ftp://example.com/', eventTypes: ['message.created'] } }))).body.error.code).toBe(
        'webhook_url_invalid',
      );
      const hook = await api.call('POST /api/rooms/{roomId}/webhooks', hooks({ json: { url: hookUrl, eventTypes: ['message.created', 'member.left'], description: 'grading' } }));
      expect(hook.status).toBe(201);
      const one = { ...roomId, webhookId: hook.body.endpoint.id as string };
      expect((await send(teacher, chat('for the hook'))).status).toBe(201);
      await waitFor(() => received.length > 0, 'a webhook delivery');
      await api.call('GET /api/rooms/{roomId}/webhooks', hooks({}));
      await api.call('GET /api/rooms/{roomId}/webhooks/{webhookId}', hooks({ params: one }));
      expect((await api.call('PATCH /api/rooms/{roomId}/webhooks/{webhookId}', hooks({ params: one, json: { enabled: false } }))).body.endpoint.disabledReason).toBe('paused');
      expect((await api.call('PATCH /api/rooms/{roomId}/webhooks/{webhookId}', hooks({ params: one, json: {} }))).status).toBe(400);
      await api.call('PATCH /api/rooms/{roomId}/webhooks/{webhookId}', hooks({ params: one, json: { enabled: true, description: 'grading, again' } }));
      await api.call('POST /api/rooms/{roomId}/webhooks/{webhookId}/rotate-secret', hooks({ params: one }));
      await waitFor(async () => (await api.call('GET /api/rooms/{roomId}/webhooks/{webhookId}/attempts', hooks({ params: one, query: { limit: '5' } }))).body.attempts.length > 0, 'an attempt');
      expect((await api.call('POST /api/rooms/{roomId}/webhooks/{webhookId}/replay', hooks({ params: one, json: { after: 0 } }))).status).toBe(202);
      expect((await api.call('POST /api/rooms/{roomId}/webhooks/{webhookId}/replay', hooks({ params: one, json: { after: 1_000_000 } }))).body.error.code).toBe('invalid_cursor');
      expect((await api.call('DELETE /api/rooms/{roomId}/webhooks/{webhookId}', hooks({ params: one }))).status).toBe(204);
      expect((await api.call('GET /api/rooms/{roomId}/webhooks/{webhookId}', hooks({ params: one }))).body.error.code).toBe('not_found');
    } finally {
      await new Promise<void>((resolve) => {
        receiver.close(() => resolve());
        receiver.closeAllConnections();
      });
    }

    // Presence.
    for (const who of [teacher, ann]) expect((await api.call('POST /api/rooms/{roomId}/presence', { token: tokenOf(who), params: roomId })).status).toBe(204);
    expect((await api.call('GET /api/rooms/{roomId}/presence', { token: tokenOf(teacher), params: roomId })).body.members).toHaveLength(2);
    expect((await api.call('GET /api/rooms/{roomId}/presence', { token: tokenOf(ann), params: roomId })).body).toEqual({ online: 2 });
    expect((await api.call('DELETE /api/rooms/{roomId}/presence', { token: tokenOf(ann), params: roomId })).status).toBe(204);
    expect((await api.call('GET /api/rooms/{roomId}/presence', { token: tokenOf(stranger), params: roomId })).status).toBe(403);

    // Mail about the room, and its one-click unsubscribe.
    await api.call('GET /api/rooms/{roomId}/notifications', { token: tokenOf(ann), params: roomId });
    expect((await api.call('PUT /api/rooms/{roomId}/notifications', { token: tokenOf(ann), params: roomId, json: { mode: 'daily' } })).body).toEqual({ mode: 'daily' });
    expect((await api.call('PUT /api/rooms/{roomId}/notifications', { token: tokenOf(ann), params: roomId, json: { mode: 'weekly' } })).status).toBe(400);
    const unsubscribe = Object.fromEntries(new URL(unsubscribeUrl(h.server.mail.links, ann.id, room.id)).searchParams);
    await api.call('GET /api/mail/unsubscribe', { query: unsubscribe });
    await api.call('POST /api/mail/unsubscribe', { query: unsubscribe, form: { 'List-Unsubscribe': 'One-Click' } });
    expect((await api.call('POST /api/mail/unsubscribe', { query: { ...unsubscribe, t: 'forged' } })).body.error.code).toBe('invalid_link');
    expect((await api.call('GET /api/rooms/{roomId}/notifications', { token: tokenOf(ann), params: roomId })).body).toEqual({ mode: 'off' });
    // Her reply and command addresses by mail (none issued yet), and a stranger's try.
    expect((await api.call('DELETE /api/rooms/{roomId}/mail-addresses', { token: tokenOf(ann), params: roomId })).body).toEqual({ revoked: 0 });
    expect((await api.call('DELETE /api/rooms/{roomId}/mail-addresses', { token: tokenOf(stranger), params: roomId })).status).toBe(403);

    // The pull feeds: a room's, and all the caller's rooms'.
    const roomEvents = await api.call('GET /api/rooms/{roomId}/events', { token: tokenOf(teacher), params: roomId, query: { limit: '3' } });
    expect(roomEvents.body.hasMore).toBe(true);
    await api.call('GET /api/rooms/{roomId}/events', { token: tokenOf(ann), params: roomId, query: { after: roomEvents.body.next } });
    expect((await api.call('GET /api/rooms/{roomId}/events', { token: tokenOf(ann), params: roomId, query: { after: 'soon' } })).body.error.code).toBe('invalid_cursor');
    // An interaction, and the room's state a late page is served.
    expect((await api.call('POST /api/rooms/{roomId}/messages', { token: tokenOf(teacher), params: roomId, json: { clientMsgId: 'view-1', audience: 'everyone', kind: 'action', body: { type: 'view.show', step: 1 } } })).status).toBe(201);
    expect((await api.call('POST /api/rooms/{roomId}/messages', { token: tokenOf(ann), params: roomId, json: { clientMsgId: 'ans-1', audience: 'instructors', kind: 'action', body: { type: 'poll.answer', pollId: 'none', choices: [0] } } })).body.error.code).toBe('poll_not_found');
    expect((await api.call('GET /api/rooms/{roomId}/state', { token: tokenOf(ann), params: roomId })).body.state.view.step).toBe(1);
    const feed = await api.call('GET /api/events', { token: tokenOf(bob), query: { limit: '2' } });
    await api.call('GET /api/events', { token: tokenOf(bob), query: { after: feed.body.next } });
    expect((await api.call('GET /api/events', { token: tokenOf(bob), query: { after: '!!' } })).body.error.code).toBe('invalid_cursor');

    // Members leave, are removed, and what refuses either.
    expect((await api.call('DELETE /api/rooms/{roomId}/members/{userId}', { token: tokenOf(ann), params: { ...roomId, userId: bob.id } })).body.error.code).toBe('forbidden');
    expect((await api.call('DELETE /api/rooms/{roomId}/members/{userId}', { token: tokenOf(teacher), params: { ...roomId, userId: teacher.id } })).body.error.code).toBe(
      'cannot_remove_member',
    );
    expect((await api.call('DELETE /api/rooms/{roomId}/members/{userId}', { token: tokenOf(teacher), params: { ...roomId, userId: bob.id } })).status).toBe(204);
    expect((await api.call('DELETE /api/rooms/{roomId}/members/{userId}', { token: tokenOf(teacher), params: { ...roomId, userId: bob.id } })).body.error.code).toBe('not_found');
    expect((await api.call('POST /api/rooms/join', { token: tokenOf(bob), json: { inviteCode: room.inviteCode } })).body.error.code).toBe('removed_from_room');
    expect((await api.call('POST /api/rooms/{roomId}/leave', { token: tokenOf(teacher), params: roomId })).body.error.code).toBe('creator_cannot_leave');
    expect((await api.call('POST /api/rooms/{roomId}/leave', { token: tokenOf(ann), params: roomId })).status).toBe(204);
    expect((await api.call('POST /api/rooms/{roomId}/leave', { token: tokenOf(ann), params: roomId })).body.error.code).toBe('not_a_member');

    // An address: set, refused to a second account, checked by the mailed link.
    const email = `rc-api-${randomBytes(5).toString('hex')}@example.test`;
    const mine = { 'x-forwarded-for': freshAddress() };
    await api.call('GET /api/account', { token: tokenOf(ann) });
    expect((await api.call('PUT /api/account/email', { token: tokenOf(ann), json: { email: email.toUpperCase() }, headers: mine })).body.email).toBe(email);
    // Each address may be mailed 3 links an hour: the one refused to a second account is another.
    const taken = `rc-api-${randomBytes(5).toString('hex')}@example.test`;
    expect((await api.call('PUT /api/account/email', { token: tokenOf(stranger), json: { email: taken }, headers: mine })).status).toBe(200);
    expect((await api.call('PUT /api/account/email', { token: tokenOf(bob), json: { email: taken }, headers: mine })).body.error.code).toBe('email_taken');
    expect((await api.call('PUT /api/account/email', { token: tokenOf(bob), json: { email: 'not an address' }, headers: mine })).status).toBe(400);
    const verifyToken = await newMailedToken(email, '/account/verify-email');
    await api.call('GET /api/account/verify-email', { query: { token: verifyToken } });
    await api.call('POST /api/account/verify-email', { query: { token: verifyToken } });
    expect((await api.call('POST /api/account/verify-email', { query: { token: verifyToken } })).body.error.code).toBe('invalid_link');
    expect((await api.call('GET /api/account/verify-email')).body.error.code).toBe('invalid_link');
    expect((await api.call('GET /api/account', { token: tokenOf(ann) })).body.emailVerified).toBe(true);

    // A password reset by the mailed link, once as JSON and once as the page's form.
    const resets: string[] = [];
    for (const as of ['json', 'form'] as const) {
      expect((await api.call('POST /api/auth/password-reset', { json: { email }, headers: mine })).status).toBe(202);
      const token = await newMailedToken(email, '/auth/password-reset', resets);
      resets.push(token);
      await api.call('GET /api/auth/password-reset', { query: { token } });
      const password = `new-password-${as}-1`;
      const done = await api.call('POST /api/auth/password-reset/confirm', as === 'json' ? { json: { token, password } } : { form: { token, password, passwordAgain: password } });
      expect(done.status).toBe(as === 'json' ? 204 : 200);
    }
    expect((await api.call('GET /api/auth/password-reset', { query: { token: resets[0]! } })).body.error.code).toBe('invalid_link');
    expect((await api.call('POST /api/auth/password-reset/confirm', { json: { token: resets[1]!, password: 'short' } })).status).toBe(400);
    expect((await api.call('GET /api/me', { token: tokenOf(ann) })).status).toBe(401);

    // A bulk announcement by e-mail: sent, followed, paused, resumed, cancelled; and the operators' side.
    const pool = h.server.services.pool;
    await pool.query('UPDATE users SET email = $2, email_verified_at = now() WHERE id = $1', [stranger.id, `rc-cmp-${randomBytes(5).toString('hex')}@example.test`]);
    await pool.query(`INSERT INTO memberships (room_id, user_id, role) VALUES ($1, $2, 'learner') ON CONFLICT DO NOTHING`, [room.id, stranger.id]);
    expect((await api.call('POST /api/campaigns', { token: tokenOf(teacher), json: { roomIds: [room.id], subject: '' } })).status).toBe(400);
    const cmp = await api.call('POST /api/campaigns', { token: tokenOf(teacher), json: { roomIds: [room.id], subject: 'Exam moved', text: 'Friday, room 204.' } });
    expect(cmp.status).toBe(201);
    const campaignId = { campaignId: cmp.body.campaign.id };
    await api.call('GET /api/campaigns', { token: tokenOf(teacher), query: { limit: '5' } });
    await api.call('GET /api/campaigns/{campaignId}', { token: tokenOf(teacher), params: campaignId });
    await api.call('GET /api/campaigns/{campaignId}/recipients', { token: tokenOf(teacher), params: campaignId, query: { state: 'sent' } });
    for (const action of ['pause', 'resume', 'cancel', 'resume'] as const) await api.call(`POST /api/campaigns/{campaignId}/${action}`, { token: tokenOf(teacher), params: campaignId });
    expect((await api.call('POST /api/admin/campaigns', { token: ADMIN_TOKEN, json: { subject: 's', text: 't' } })).status).toBe(400);
    const ops = await api.call('POST /api/admin/campaigns', { token: ADMIN_TOKEN, json: { roomIds: [room.id], subject: 'From the school', text: 'Closed on Monday.' } });
    expect(ops.status).toBe(201);
    const opsId = { campaignId: ops.body.campaign.id };
    await api.call('GET /api/admin/campaigns', { token: ADMIN_TOKEN });
    await api.call('GET /api/admin/campaigns/{campaignId}', { token: ADMIN_TOKEN, params: opsId });
    await api.call('GET /api/admin/campaigns/{campaignId}/recipients', { token: ADMIN_TOKEN, params: opsId });
    for (const action of ['pause', 'resume', 'cancel'] as const) await api.call(`POST /api/admin/campaigns/{campaignId}/${action}`, { token: ADMIN_TOKEN, params: opsId });

    // A password change, then logging out.
    expect((await api.call('POST /api/auth/password', { token: tokenOf(teacher), json: { currentPassword: 'not-the-password', newPassword: 'another-password-1' } })).status).toBe(401);
    const changed = await api.call('POST /api/auth/password', { token: tokenOf(teacher), json: { currentPassword: PASSWORD, newPassword: 'another-password-1' } });
    expect(changed.status).toBe(200);
    expect((await api.call('POST /api/auth/logout', { token: changed.body.token })).status).toBe(204);
    expect((await api.call('POST /api/auth/logout', { token: changed.body.token })).status).toBe(401);

    // The operators' API.
    expect((await api.call('GET /api/admin/mail', { token: 'not-the-admin-token-at-all' })).body.error.code).toBe('unauthenticated');
    expect((await api.call('GET /api/admin/mail', { token: ADMIN_TOKEN })).status).toBe(200);
    const bounced = `rc-bounced-${randomBytes(5).toString('hex')}@example.test`;
    await h.server.mail.store.suppress(bounced, 'a test bounce');
    expect((await api.call('DELETE /api/admin/mail/suppressions/{email}', { token: ADMIN_TOKEN, params: { email: bounced } })).status).toBe(204);
    expect((await api.call('DELETE /api/admin/mail/suppressions/{email}', { token: ADMIN_TOKEN, params: { email: bounced } })).body.error.code).toBe('not_found');

    // Every operation the document describes was called at least once.
    expect(documentedRoutes().filter((r) => !api.called.has(r))).toEqual([]);
  }, 120_000);
});
