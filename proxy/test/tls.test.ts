import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig } from '../../testkit/test-config';
import { createProxy } from '../src/index';
import { makeTestCertificates, type TestCertificates } from '../../testkit/certs';
import { startTestProxy, type TestProxy } from '../../testkit/test-proxy';
import { startUpstreamStub, type UpstreamStub } from '../../testkit/upstream-stub';

let certs: TestCertificates;
let upstream: UpstreamStub;
let p: TestProxy;

beforeAll(async () => {
  certs = await makeTestCertificates();
  upstream = await startUpstreamStub();
  p = await startTestProxy(certs, { app: [upstream.url] });
});
afterAll(async () => {
  await p?.close();
  await upstream?.close();
  certs?.remove();
});

/** GET over TLS with the given trust; resolves with the status, rejects with the TLS error. */
function get(port: number, options: https.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/healthz', agent: false, ...options }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}

describe('the public TLS port', () => {
  it('gives a plain-TCP client no HTTP answer', async () => {
    const reply = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: p.proxy.ports.https }, () => socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n'));
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => undefined); // a reset is as good a refusal as a close
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    });
    expect(reply.startsWith('HTTP/')).toBe(false);
  });

  it('serves a client that trusts the CA, under both names on the certificate', async () => {
    expect(await get(p.proxy.ports.https, { ca: certs.ca, servername: 'localhost' })).toBe(200);
    expect(await get(p.proxy.ports.https, { ca: certs.ca })).toBe(200); // verified against IP:127.0.0.1
  });

  it('fails certificate verification for a client that does not trust the CA', async () => {
    const err = await get(p.proxy.ports.https, { servername: 'localhost' }).then(
      () => null,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN/);
  });

  it('fails hostname verification for a name not on the certificate', async () => {
    const err = await get(p.proxy.ports.https, { ca: certs.ca, servername: 'example.org', checkServerIdentity: (_h, cert) => tls.checkServerIdentity('example.org', cert) }).then(
      () => null,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });
});

describe('the plain-HTTP port', () => {
  it('redirects every request to the same path over HTTPS, keeping the method (308)', async () => {
    const res = await fetch(`http://127.0.0.1:${p.proxy.ports.http}/api/rooms?x=1`, { method: 'POST', redirect: 'manual' });
    expect(res.status).toBe(308);
    expect(res.headers.get('location')).toBe(`https://127.0.0.1:${p.proxy.ports.https}/api/rooms?x=1`);
  });

  it('never sends a browser to a host that is not one of its public origins', async () => {
    const locationFor = (host: string): Promise<string | undefined> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: p.proxy.ports.http, path: '/x', headers: { host } }, (res) => {
          res.resume();
          resolve(res.headers.location);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await locationFor('evil.example')).toBe(`https://localhost:${p.proxy.ports.https}/x`);
    expect(await locationFor('evil.example:8080')).toBe(`https://localhost:${p.proxy.ports.https}/x`);
    expect(await locationFor('LOCALHOST:80')).toBe(`https://localhost:${p.proxy.ports.https}/x`);
    expect(await locationFor('127.0.0.1')).toBe(`https://127.0.0.1:${p.proxy.ports.https}/x`);
  });
});

describe('the development certificate', () => {
  it('is made on first start for localhost and 127.0.0.1 under the data dir, and reused after', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'roomcast-proxy-dev-'));
    try {
      const config = testConfig({ ROOMCAST_DATA_DIR: dataDir });
      const options = { upstreams: { app: [upstream.url] }, ports: { https: 0, http: 0, admin: 0 } };
      const first = await createProxy(config, options);
      await first.close();
      expect(first.certFile).toBe(path.join(dataDir, 'proxy', 'dev-cert.pem'));
      expect(first.certGenerated).toBe(true);

      const second = await createProxy(config, options);
      try {
        expect(second.certGenerated).toBe(false);
        const ca = readFileSync(second.certFile);
        expect(await get(second.ports.https, { ca, servername: 'localhost' })).toBe(200);
        expect(await get(second.ports.https, { ca })).toBe(200);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
