/**
 * The proxy out of file descriptors: found by the 10,000-connection benchmark, where one EMFILE
 * on a connect to a broker node marked the node down and closed its 3,306 healthy WebSockets.
 * Here a real proxy process runs under a small descriptor limit in front of the real nodes.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../runtime/config';
import type { UpstreamSnapshot } from '../src/index';
import { waitFor } from '../../testkit/stomp';
import { makeTestCertificates, type TestCertificates } from '../../testkit/certs';
import { freePort } from '../../testkit/ports';

type Outcome = { ws: WebSocket } | { status: number; body: string } | { error: string };

/** Opens a WebSocket through the proxy: the open socket, the refusal, or the error. */
function open(url: string, ca: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, ['v12.stomp'], { ca });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', (e) => resolve({ error: e.message }));
  });
}

/** How many TCP connections (anything but a listening socket) process `pid` holds open. */
function connectedSockets(pid: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  let n = 0;
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      // sl local_address rem_address st ... inode; state 0A is LISTEN.
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] !== '0A' && inodes.has(f[9]!)) n++;
    }
  }
  return n;
}

/** Sends a WebSocket ping through the tunnel: 'pong' from the node, or 'closed' if the socket closes first. */
function ping(ws: WebSocket): Promise<'pong' | 'closed'> {
  if (ws.readyState !== WebSocket.OPEN) return Promise.resolve('closed');
  return new Promise((resolve) => {
    ws.once('pong', () => resolve('pong'));
    ws.once('close', () => resolve('closed'));
    ws.ping();
  });
}

describe('the proxy at its file descriptor limit', () => {
  let certs: TestCertificates;
  let proxy: ChildProcess;
  let ports: { https: number; http: number; admin: number };
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    certs = await makeTestCertificates();
    ports = { https: await freePort(), http: await freePort(), admin: await freePort() };
    proxy = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'proxy/src/main.ts')], {
      cwd: repoRoot,
      env: {
        ...process.env,
        ROOMCAST_LOG_LEVEL: 'silent',
        ROOMCAST_PROXY_HTTPS_PORT: String(ports.https),
        ROOMCAST_PROXY_HTTP_PORT: String(ports.http),
        ROOMCAST_PROXY_ADMIN_PORT: String(ports.admin),
        ROOMCAST_PROXY_TLS_CERT: certs.certFile,
        ROOMCAST_PROXY_TLS_KEY: certs.keyFile,
        // No health-check sockets competing for the last descriptors while the test counts them.
        ROOMCAST_PROXY_HEALTH_INTERVAL_MS: '600000',
        // This is about running out of descriptors: the per-address share of so few (derived by
        // default) and the CONNECT deadline would refuse or close these sockets first.
        ROOMCAST_PROXY_MAX_CONNECTIONS_PER_IP: '1000',
        ROOMCAST_PROXY_CONNECT_TIMEOUT_MS: '600000',
      },
      stdio: 'ignore',
    });
    const ready = async (): Promise<boolean> =>
      (await fetch(`http://127.0.0.1:${ports.admin}/healthz`, { headers: { connection: 'close' } }).catch(() => null))?.ok === true;
    await waitFor(ready, 'the proxy to start', 30_000);
    // The first health checks' kept-alive sockets to the app servers close after about 4 s.
    await waitFor(() => connectedSockets(proxy.pid!) === 0, "the health checks' sockets to close", 15_000);
    // Room for ten tunnels (two descriptors each: the client's and the node's) and one more
    // accept: the eleventh WebSocket is accepted and finds no descriptor for its node.
    // The limit caps descriptor numbers, not their count: find the one that leaves 21 free numbers.
    const open = new Set(readdirSync(`/proc/${proxy.pid}/fd`).map(Number));
    let limit = 0;
    for (let free = 0; free < 21; limit++) if (!open.has(limit)) free++;
    execFileSync('prlimit', [`--pid=${proxy.pid}`, `--nofile=${limit}:${limit}`]);
  });
  afterAll(async () => {
    for (const ws of sockets) ws.terminate();
    proxy?.kill('SIGTERM');
    certs?.remove();
  });

  it('refuses new WebSockets with 503 and keeps every node up and every open WebSocket open', async () => {
    const url = `wss://127.0.0.1:${ports.https}/ws`;
    let refused: { status: number; body: string } | null = null;
    for (let i = 0; i < 40 && !refused; i++) {
      const o = await open(url, certs.ca);
      if ('ws' in o) sockets.push(o.ws);
      else if ('status' in o) refused = o;
      // A connection reset means the accept itself found no descriptor; try again.
    }
    expect(sockets.length).toBeGreaterThan(5);
    expect(refused?.status).toBe(503);
    expect(JSON.parse(refused?.body ?? '{}').error.code).toBe('proxy_overloaded');

    // Marking a node down would close its WebSockets with 1001 at once, before the proxy reads
    // anything more from them: a ping through each tunnel, answered by its node, shows it open.
    const closed: number[] = [];
    for (const ws of sockets) ws.once('close', (code) => closed.push(code));
    expect(await Promise.all(sockets.map(ping))).toEqual(sockets.map(() => 'pong'));
    expect(closed).toEqual([]);
    expect(sockets.every((ws) => ws.readyState === WebSocket.OPEN)).toBe(true);

    // Free two descriptors so the admin port can answer.
    sockets.shift()?.close();
    await waitFor(() => closed.length === 1, 'one WebSocket to close');
    const { upstreams } = (await (await fetch(`http://127.0.0.1:${ports.admin}/upstreams`)).json()) as { upstreams: UpstreamSnapshot[] };
    const nodes = upstreams.filter((u) => u.kind === 'web-stomp');
    expect(nodes.length).toBeGreaterThan(0);
    expect(nodes.map((u) => u.state)).toEqual(nodes.map(() => 'up'));
  });
});
