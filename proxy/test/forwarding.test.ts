import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchangeDestination, roomAllKey } from '../../shared/protocol/routing';
import type { RoomMessage } from '../../shared/protocol/messages';
import { chat, makeRoom, startHarness, type Harness } from '../../testkit/harness';
import { subscribeWithReceipt, waitFor } from '../../testkit/stomp';
import { makeTestCertificates, type TestCertificates } from '../../testkit/certs';
import { openTls, startTestProxy, tlsExchange, type TestProxy } from '../../testkit/test-proxy';
import { startUpstreamStub, type UpstreamStub } from '../../testkit/upstream-stub';

let certs: TestCertificates;
let h: Harness;
let stub: UpstreamStub;
let p: TestProxy;

beforeAll(async () => {
  certs = await makeTestCertificates();
  [h, stub] = await Promise.all([startHarness(), startUpstreamStub()]);
  p = await startTestProxy(certs, { app: [h.server.url] });
});
afterAll(async () => {
  await p?.close();
  await Promise.all([h?.close(), stub?.close()]);
  certs?.remove();
});

describe('forwarding through the proxy', () => {
  it('delivers a message posted over HTTPS to a STOMP subscriber on WSS', async () => {
    const room = await makeRoom(h, 1);
    const learner = p.api(room.learners[0]!.token);
    const token = await learner.post('/api/broker-token');
    expect(token.status).toBe(200);
    const session = await p.stomp(token.body.login, token.body.passcode);
    const got: RoomMessage[] = [];
    await subscribeWithReceipt(session, exchangeDestination(roomAllKey(room.id)), (m) => got.push(JSON.parse(m.body) as RoomMessage));

    const sent = await p.api(room.instructor.token).post(`/api/rooms/${room.id}/messages`, chat('over the proxy'));
    expect(sent.status).toBe(201);
    await waitFor(() => got.length >= 1, 'the message over WSS');
    expect(got.map((m) => [m.id, m.body.text])).toEqual([[sent.body.id, 'over the proxy']]);
    expect(p.proxy.upstreams().filter((u) => u.kind === 'web-stomp').reduce((n, u) => n + u.open, 0)).toBe(1);
  });

  it('replaces forged X-Forwarded-* headers and keeps a well-formed X-Request-Id', async () => {
    const echo = await startTestProxy(certs, { app: [stub.url] });
    try {
      const res = await echo.api().request('GET', '/echo', undefined, { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'http', 'x-request-id': 'trace-42' });
      expect(res.status).toBe(200);
      expect(res.body.headers).toMatchObject({
        'x-forwarded-for': '127.0.0.1',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': `127.0.0.1:${echo.proxy.ports.https}`,
        'x-request-id': 'trace-42',
      });
      expect(res.headers.get('x-request-id')).toBe('trace-42');

      const fresh = await echo.api().request('GET', '/echo', undefined, { 'x-request-id': 'not a valid id!' });
      const id = fresh.headers.get('x-request-id');
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(fresh.body.headers['x-request-id']).toBe(id);
    } finally {
      await echo.close();
    }
  });
});

describe('what the proxy refuses', () => {
  it('answers internal endpoints itself with a JSON 404, however they are spelled', async () => {
    expect((await h.api.get('/metrics')).status).toBe(200); // the app server does serve it
    // Sent as written: a URL parser on the client side would already resolve `..`.
    const rawGet = (target: string): Promise<{ status: number; body: any }> =>
      new Promise((resolve, reject) => {
        const req = https.get({ host: '127.0.0.1', port: p.proxy.ports.https, path: target, ca: certs.ca, agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        });
        req.on('error', reject);
      });
    for (const target of ['/metrics', '/internal/x', '/auth/user', '/METRICS', '/%6Detrics', '/api/../metrics', '//internal/', '/metrics/?x=1']) {
      const res = await rawGet(target);
      expect({ target, status: res.status, code: res.body?.error?.code }).toEqual({ target, status: 404, code: 'not_found' });
      expect(typeof res.body.error.message).toBe('string');
    }
  });

  it('answers 431 to request headers above the limit', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.get(`${p.url}/healthz`, { ca: certs.ca, agent: false, headers: { 'x-padding': 'a'.repeat(p.config.proxy.maxHeaderBytes) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
    });
    expect(status).toBe(431);
    expect((await p.api().get('/healthz')).status).toBe(200);
  });

  it('closes a WebSocket silent for longer than the idle timeout with 1001', async () => {
    const idle = await startTestProxy(certs, { app: [h.server.url] }, { ROOMCAST_PROXY_IDLE_TIMEOUT_MS: '300' });
    try {
      const room = await makeRoom(h, 1);
      const token = await idle.api(room.learners[0]!.token).post('/api/broker-token');
      // The test client sends no heart-beats, so nothing crosses the tunnel once connected.
      const session = await idle.stomp(token.body.login, token.body.passcode);
      expect(await session.closed).toEqual({ code: 1001, reason: 'idle timeout' });
    } finally {
      await idle.close();
    }
  });

  it('answers 429 on connections over the per-address limit, to HTTP and to upgrades', async () => {
    const limited = await startTestProxy(certs, { app: [stub.url] }, { ROOMCAST_PROXY_MAX_CONNECTIONS_PER_IP: '2' });
    const held = await Promise.all([openTls(limited.proxy.ports.https, certs.ca), openTls(limited.proxy.ports.https, certs.ca)]);
    try {
      const res = await tlsExchange(limited.proxy.ports.https, certs.ca, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
      expect(res).toMatch(/^HTTP\/1\.1 429 /);
      const body = JSON.parse(res.slice(res.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('too_many_connections');

      const upgrade = await tlsExchange(
        limited.proxy.ports.https,
        certs.ca,
        'GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      expect(upgrade).toMatch(/^HTTP\/1\.1 429 /);
      expect(upgrade).toContain('"too_many_connections"');
    } finally {
      for (const s of held) s.destroy();
      await limited.close();
    }
  });
});
