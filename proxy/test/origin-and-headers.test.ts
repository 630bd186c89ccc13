/**
 * Which pages may open a WebSocket (Origin), the headers the proxy adds on its HTTPS port, and
 * the default per-address connection limit.
 */
import type http from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../runtime/config';
import { connectionLimit, perAddressLimit, RESERVED_DESCRIPTORS } from '../src/descriptor-budget';
import { makeTestCertificates, type TestCertificates } from '../../testkit/certs';
import { startTestProxy, type TestProxy } from '../../testkit/test-proxy';
import { startUpstreamStub, type UpstreamStub } from '../../testkit/upstream-stub';

type Outcome = { open: true } | { status: number; headers: http.IncomingHttpHeaders; body: string };

/** Tries a WebSocket upgrade with `origin` (none when undefined). */
function upgrade(url: string, ca: Buffer, origin?: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['v12.stomp'], { ca, ...(origin === undefined ? {} : { origin }) });
    ws.once('open', () => {
      ws.terminate();
      resolve({ open: true });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.once('error', reject);
  });
}

let certs: TestCertificates;
let stub: UpstreamStub;
let p: TestProxy;

beforeAll(async () => {
  certs = await makeTestCertificates();
  stub = await startUpstreamStub();
  p = await startTestProxy(certs, { app: [stub.url] });
});
afterAll(async () => {
  await p?.close();
  await stub?.close();
  certs?.remove();
});

describe('the Origin of a WebSocket upgrade', () => {
  it("accepts the proxy's own https origins by default, and no Origin at all (not a browser)", async () => {
    const port = p.proxy.ports.https;
    expect(await upgrade(p.wssUrl, certs.ca, `https://127.0.0.1:${port}`)).toEqual({ open: true });
    expect(await upgrade(p.wssUrl, certs.ca, `https://localhost:${port}`)).toEqual({ open: true });
    expect(await upgrade(p.wssUrl, certs.ca)).toEqual({ open: true });
  });

  it.each(['https://evil.example', `http://127.0.0.1`, 'null', 'https://localhost:1'])('refuses %s with 403 origin_not_allowed', async (origin) => {
    const before = await refusedCount();
    const o = await upgrade(p.wssUrl, certs.ca, origin);
    if ('open' in o) throw new Error('the upgrade was accepted');
    expect(o.status).toBe(403);
    expect(JSON.parse(o.body).error.code).toBe('origin_not_allowed');
    expect(o.headers['x-content-type-options']).toBe('nosniff');
    expect(o.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(await refusedCount()).toBe(before + 1);
  });

  it('accepts exactly the configured public origins when set', async () => {
    const q = await startTestProxy(certs, { app: [stub.url] }, { ROOMCAST_PUBLIC_ORIGINS: 'https://rooms.example.org, https://other.example.org:8443' });
    try {
      expect(await upgrade(q.wssUrl, certs.ca, 'https://rooms.example.org')).toEqual({ open: true });
      expect(await upgrade(q.wssUrl, certs.ca, 'https://other.example.org:8443')).toEqual({ open: true });
      expect(await upgrade(q.wssUrl, certs.ca, `https://127.0.0.1:${q.proxy.ports.https}`)).toMatchObject({ status: 403 });
    } finally {
      await q.close();
    }
  });

  it.each(['http://rooms.example.org', 'https://rooms.example.org/app', 'rooms.example.org', 'https://Rooms.example.org', ''])(
    'refuses ROOMCAST_PUBLIC_ORIGINS=%s at start-up',
    (value) => {
      expect(() => loadConfig({ ROOMCAST_PUBLIC_ORIGINS: value })).toThrow(ConfigError);
    },
  );

  async function refusedCount(): Promise<number> {
    const text = await (await fetch(`${p.proxy.adminUrl}/metrics`)).text();
    return Number(/^roomcast_proxy_refused_total\{reason="forbidden_origin"\} (\d+)/m.exec(text)?.[1] ?? 0);
  }
});

describe('headers on the HTTPS port', () => {
  it('sends Strict-Transport-Security on forwarded answers and on its own, and the API headers (nosniff, CSP, no framing) on its own errors', async () => {
    const forwarded = await p.api().get('/echo');
    expect(forwarded.status).toBe(200);
    expect(forwarded.headers.get('strict-transport-security')).toBe('max-age=31536000');

    const own = await p.api().get('/metrics');
    expect(own.status).toBe(404);
    expect(own.headers.get('strict-transport-security')).toBe('max-age=31536000');
    expect(own.headers.get('x-content-type-options')).toBe('nosniff');
    expect(own.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    expect(own.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(own.headers.get('x-frame-options')).toBe('DENY');
    expect(own.headers.get('referrer-policy')).toBe('no-referrer');
    expect(own.headers.get('cache-control')).toBe('no-store');
  });

  it('sends no Strict-Transport-Security on the plain-HTTP redirect', async () => {
    const res = await fetch(`${p.proxy.httpUrl}/`, { redirect: 'manual' });
    expect(res.status).toBe(308);
    expect(res.headers.get('strict-transport-security')).toBe(null);
  });
});

describe('the plain-HTTP port', () => {
  /** A TCP connection to the redirect port that sends nothing; resolves with how long it lived. */
  const silent = (port: number): Promise<number> =>
    new Promise((resolve) => {
      const opened = Date.now();
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      socket.once('close', () => resolve(Date.now() - opened));
    });

  it("drops a connection that says nothing, and counts toward its address's limit", async () => {
    const q = await startTestProxy(certs, { app: [stub.url] }, { ROOMCAST_PROXY_MAX_CONNECTIONS_PER_IP: '2', ROOMCAST_PROXY_CONNECT_TIMEOUT_MS: '1000' });
    try {
      const held = [silent(q.proxy.ports.http), silent(q.proxy.ports.http)];
      // The third from the same address is closed at once; the two within the limit at the deadline.
      expect(await silent(q.proxy.ports.http)).toBeLessThan(500);
      for (const lived of await Promise.all(held)) {
        expect(lived).toBeGreaterThanOrEqual(950);
        expect(lived).toBeLessThan(2500);
      }
    } finally {
      await q.close();
    }
  });
});

describe('the default per-address connection limit', () => {
  it('is unset in the configuration, so the proxy derives it', () => {
    expect(loadConfig({}).proxy.maxConnectionsPerIp).toBe(null);
  });

  it('leaves one address a quarter of the WebSockets the descriptors allow (two each)', () => {
    expect(perAddressLimit(65_536)).toBe(8160);
    expect(perAddressLimit(20_000)).toBe(2468);
    expect(perAddressLimit(1024)).toBe(96);
    for (const files of [1024, 20_000, 65_536]) expect(4 * 2 * perAddressLimit(files) + RESERVED_DESCRIPTORS).toBeLessThanOrEqual(files);
  });

  it('follows the open-file limit raised after start-up, and a configured value wins', () => {
    let files = 1024;
    const derived = connectionLimit(null, () => files);
    expect(derived()).toBe(96);
    expect(connectionLimit(7, () => files)()).toBe(7);
    files = 65_536;
    // Re-read at most every 5 s: a fresh reader sees the new limit.
    expect(connectionLimit(null, () => files)()).toBe(8160);
  });
});
