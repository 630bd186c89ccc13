import https from 'node:https';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeUser, startHarness, type Harness } from '../../testkit/harness';
import { makeTestCertificates, type TestCertificates } from '../../testkit/certs';
import { startTestProxy } from '../../testkit/test-proxy';
import { startUpstreamStub, type UpstreamStub } from '../../testkit/upstream-stub';

let certs: TestCertificates;
let h: Harness;
let stub: UpstreamStub;
beforeAll(async () => {
  certs = await makeTestCertificates();
  [h, stub] = await Promise.all([startHarness(), startUpstreamStub()]);
});
afterAll(async () => {
  await Promise.all([h?.close(), stub?.close()]);
  certs?.remove();
});

const refusesConnections = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });

describe('graceful shutdown', () => {
  it('closes WebSockets with 1001, refuses new connections and lets an in-flight request finish', async () => {
    // The stub holds /hold; broker tokens come from the real app server.
    const p = await startTestProxy(certs, { app: [stub.url] });
    const learner = await makeUser(h, 'learner');
    const token = await learner.api.post('/api/broker-token');
    const session = await p.stomp(token.body.login, token.body.passcode);

    const held = stub.nextHeld();
    const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.get(`${p.url}/hold`, { agent: p.agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    const upstreamRes = await held;

    const closing = p.proxy.close({ graceMs: 10_000 });
    expect(await session.closed).toEqual({ code: 1001, reason: 'proxy shutting down' });
    expect(await refusesConnections(p.proxy.ports.https)).toBe(true);

    upstreamRes.writeHead(200, { 'content-type': 'text/plain' }).end('finished');
    expect(await inFlight).toEqual({ status: 200, body: 'finished' });
    await closing;
    p.agent.destroy();
  });
});
