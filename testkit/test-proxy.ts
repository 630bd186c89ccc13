/**
 * Starts a proxy in-process on free ports, serving the test CA's certificate, in front of the
 * given upstreams; and clients that trust that CA: HTTPS requests, raw TLS exchanges, STOMP
 * over WSS.
 */
import https from 'node:https';
import tls from 'node:tls';
import type { Config } from '../runtime/config';
import { ApiClient, type Fetch } from './api-client';
import { testConfig } from './test-config';
import { connectStomp, type StompSession } from './stomp';
import { createProxy, type Proxy, type UpstreamUrls } from '../proxy/src/index';
import type { TestCertificates } from './certs';

export interface TestProxy {
  proxy: Proxy;
  config: Config;
  /** `https://127.0.0.1:<port>` (the test certificate names 127.0.0.1 and localhost). */
  url: string;
  wssUrl: string;
  agent: https.Agent;
  api(token?: string): ApiClient;
  stomp(login: string, passcode: string): Promise<StompSession>;
  close(): Promise<void>;
}

/** A fetch over node:https, which (unlike the global fetch) takes a CA to trust. */
export function httpsFetch(agent: https.Agent): Fetch {
  return (url, init) =>
    new Promise((resolve, reject) => {
      const req = https.request(url, { method: init.method ?? 'GET', headers: init.headers as Record<string, string>, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) for (const one of [v ?? []].flat()) headers.append(k, one);
          const body = Buffer.concat(chunks);
          resolve(new Response(body.length > 0 ? body : null, { status: res.statusCode, headers }));
        });
      });
      req.on('error', reject);
      req.end(init.body as string | undefined);
    });
}

export async function startTestProxy(
  certs: TestCertificates,
  upstreams: Partial<UpstreamUrls>,
  settings: Record<string, string> = {},
): Promise<TestProxy> {
  const config = testConfig({
    ROOMCAST_PROXY_TLS_CERT: certs.certFile,
    ROOMCAST_PROXY_TLS_KEY: certs.keyFile,
    ROOMCAST_PROXY_HEALTH_INTERVAL_MS: '200',
    ...settings,
  });
  const proxy = await createProxy(config, { upstreams, ports: { https: 0, http: 0, admin: 0 } });
  const url = `https://127.0.0.1:${proxy.ports.https}`;
  const agent = new https.Agent({ ca: certs.ca, keepAlive: true });
  const fetchImpl = httpsFetch(agent);
  const sessions: StompSession[] = [];
  const wssUrl = `wss://127.0.0.1:${proxy.ports.https}/ws`;
  return {
    proxy,
    config,
    url,
    wssUrl,
    agent,
    api: (token) => new ApiClient(url, token, fetchImpl),
    async stomp(login, passcode) {
      const s = await connectStomp(wssUrl, login, passcode, { webSocket: { ca: certs.ca } });
      sessions.push(s);
      return s;
    },
    async close() {
      await Promise.all(sessions.map((s) => s.disconnect()));
      agent.destroy();
      await proxy.close({ graceMs: 2000 });
    },
  };
}

/** Writes `request` over a TLS connection trusting the test CA and returns all it gets back. */
export function tlsExchange(port: number, ca: Buffer, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => socket.write(request));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** Resolves with a TLS connection once its handshake is done. */
export function openTls(port: number, ca: Buffer): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => resolve(socket));
    socket.once('error', reject);
  });
}
