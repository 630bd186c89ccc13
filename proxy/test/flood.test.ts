/**
 * One address floods the proxy with WebSockets that never log in, or fail to: the proxy must
 * close them within the CONNECT deadline, hold at most its per-address share of them, and keep
 * serving everyone else. A real proxy process runs under 1,024 descriptors (room for about 480
 * WebSockets) in front of an in-process app server and the real Web-STOMP nodes; the flood
 * (600 sockets from 127.0.0.1) is more than those descriptors could hold, and the other client
 * (127.0.0.2) logs in, subscribes and receives a message through it meanwhile.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../runtime/config';
import type { RoomMessage } from '../../shared/protocol/messages';
import { exchangeDestination, roomAllKey } from '../../shared/protocol/routing';
import { ApiClient } from '../../testkit/api-client';
import { chat, makeRoom, PASSWORD, startHarness, type Harness } from '../../testkit/harness';
import { connectStomp, subscribeWithReceipt, waitFor } from '../../testkit/stomp';
import { perAddressLimit } from '../src/descriptor-budget';
import { makeTestCertificates, type TestCertificates } from '../../testkit/certs';
import { freePort } from '../../testkit/ports';
import { httpsFetch } from '../../testkit/test-proxy';
import { stompText } from '../../testkit/raw-stomp';

const OPEN_FILES = 1024;
/** The default. */
const CONNECT_TIMEOUT_MS = 5000;
const SILENT = 500;
const FAILING_LOGIN = 100;
const FLOODER = '127.0.0.1';
const OTHER = '127.0.0.2';

interface FloodSocket {
  /** The upgrade's answer: 101, or the refusal's status (0: the connection failed). */
  status: number;
  openedAt: number;
  closedAt: number | null;
  ws: WebSocket;
}

/** Opens a WebSocket from `FLOODER` that sends nothing, or a CONNECT with a wrong passcode. */
function floodSocket(url: string, ca: Buffer, failLogin: boolean): Promise<FloodSocket> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, ['v12.stomp'], { ca, localAddress: FLOODER });
    const s: FloodSocket = { status: 0, openedAt: 0, closedAt: null, ws };
    ws.on('error', () => undefined); // a refused or reset socket is an outcome, not a failure
    ws.once('close', () => {
      s.closedAt = Date.now();
      resolve(s);
    });
    ws.once('unexpected-response', (_req, res) => {
      s.status = res.statusCode ?? 0;
      res.resume();
      resolve(s);
    });
    ws.once('open', () => {
      s.status = 101;
      s.openedAt = Date.now();
      if (failLogin) ws.send(stompText('CONNECT', { 'accept-version': '1.2', host: '/', login: 'no-such-user', passcode: 'wrong' }));
      resolve(s);
    });
  });
}

describe('one address flooding the proxy', () => {
  let certs: TestCertificates;
  let h: Harness;
  let proxy: ChildProcess;
  let ports: { https: number; http: number; admin: number };

  beforeAll(async () => {
    certs = await makeTestCertificates();
    h = await startHarness();
    ports = { https: await freePort(), http: await freePort(), admin: await freePort() };
    const appPort = new URL(h.server.url).port;
    // prlimit sets the limit before the proxy starts, as infra does just after.
    proxy = spawn('prlimit', [`--nofile=${OPEN_FILES}:${OPEN_FILES}`, process.execPath, '--import', 'tsx', path.join(repoRoot, 'proxy/src/main.ts')], {
      cwd: repoRoot,
      env: {
        ...process.env,
        ROOMCAST_LOG_LEVEL: 'silent',
        ROOMCAST_APP_PORT: appPort,
        ROOMCAST_APP_SERVERS: '1',
        ROOMCAST_PROXY_HTTPS_PORT: String(ports.https),
        ROOMCAST_PROXY_HTTP_PORT: String(ports.http),
        ROOMCAST_PROXY_ADMIN_PORT: String(ports.admin),
        ROOMCAST_PROXY_TLS_CERT: certs.certFile,
        ROOMCAST_PROXY_TLS_KEY: certs.keyFile,
      },
      stdio: 'ignore',
    });
    const ready = async (): Promise<boolean> =>
      (await fetch(`http://127.0.0.1:${ports.admin}/healthz`, { headers: { connection: 'close' } }).catch(() => null))?.ok === true;
    await waitFor(ready, 'the proxy to start', 30_000);
  });
  afterAll(async () => {
    proxy?.kill('SIGTERM');
    await h?.close();
    certs?.remove();
  });

  it('closes sockets that never log in, or fail to, within the deadline, and serves another address meanwhile', async () => {
    const url = `https://127.0.0.1:${ports.https}`;
    const wssUrl = `wss://127.0.0.1:${ports.https}/ws`;
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;

    // A first wave, then more until a wave gets nothing in: the flooder takes all it can get.
    const flood = await Promise.all(Array.from({ length: SILENT + FAILING_LOGIN }, (_, i) => floodSocket(wssUrl, certs.ca, i % 6 === 0)));
    for (let wave = 0; wave < 20; wave++) {
      const more = await Promise.all(Array.from({ length: 50 }, () => floodSocket(wssUrl, certs.ca, false)));
      flood.push(...more);
      if (more.every((s) => s.status !== 101)) break;
    }
    const admitted = flood.filter((s) => s.status === 101);
    // The address's share got in (failed logins free their place at once, so a little more over
    // the waves); the rest were told why (429) rather than exhausting the descriptors.
    expect(admitted.length).toBeGreaterThanOrEqual(perAddressLimit(OPEN_FILES));
    expect(admitted.length).toBeLessThanOrEqual(perAddressLimit(OPEN_FILES) + FAILING_LOGIN);
    expect(flood.filter((s) => s.status === 429).length).toBe(flood.length - admitted.length);

    // While the admitted ones are still open: a real login, token, WebSocket, subscribe and message from another address.
    const agent = new https.Agent({ ca: certs.ca, localAddress: OTHER, keepAlive: true });
    try {
      const api = new ApiClient(url, undefined, httpsFetch(agent));
      const login = await api.post('/api/auth/login', { username: learner.username, password: PASSWORD });
      expect(login.status).toBe(200);
      const me = api.withToken(login.body.token);
      const token = await me.post('/api/broker-token');
      expect(token.status).toBe(200);
      const session = await connectStomp(wssUrl, token.body.login, token.body.passcode, { webSocket: { ca: certs.ca, localAddress: OTHER } });
      try {
        const got: RoomMessage[] = [];
        await subscribeWithReceipt(session, exchangeDestination(roomAllKey(room.id)), (m) => got.push(JSON.parse(m.body) as RoomMessage));
        expect(admitted.some((s) => s.closedAt === null)).toBe(true);
        const sent = await me.post(`/api/rooms/${room.id}/messages`, chat('served during the flood'));
        expect(sent.status).toBe(201);
        await waitFor(() => got.some((m) => m.id === sent.body.id), 'the message through the proxy');
      } finally {
        await session.disconnect();
      }
    } finally {
      agent.destroy();
    }

    // Every admitted flood socket is closed by the proxy: silent ones at the deadline, failed logins at once.
    await waitFor(() => admitted.every((s) => s.closedAt !== null), 'every flood socket to be closed', CONNECT_TIMEOUT_MS + 5000);
    for (const s of admitted) expect(s.closedAt! - s.openedAt).toBeLessThan(CONNECT_TIMEOUT_MS + 2000);
    const metrics = await (await fetch(`http://127.0.0.1:${ports.admin}/metrics`)).text();
    expect(metrics).toMatch(/^roomcast_proxy_stomp_refused_total\{reason="connect_timeout"\} [1-9]/m);
    expect(metrics).toMatch(/^roomcast_proxy_stomp_refused_total\{reason="login_failed"\} [1-9]/m);
  });
});
