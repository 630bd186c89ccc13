/**
 * The admin port, on loopback only: Prometheus metrics, the proxy's own liveness (what infra
 * polls after starting it) and the upstreams' state as JSON.
 */
import http from 'node:http';
import type { Registry } from 'prom-client';
import { sendError } from './answers';
import type { UpstreamSnapshot } from './upstreams';

export function createAdminServer(registry: Registry, upstreams: () => UpstreamSnapshot[]): http.Server {
  const json = (res: http.ServerResponse, body: unknown): void => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  };
  const routes = new Map<string, (res: http.ServerResponse) => Promise<void> | void>([
    [
      '/metrics',
      async (res) => {
        const text = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType }).end(text);
      },
    ],
    ['/healthz', (res) => json(res, { status: 'ok' })],
    ['/upstreams', (res) => json(res, { upstreams: upstreams() })],
  ]);
  return http.createServer((req, res) => {
    const route = req.method === 'GET' ? routes.get((req.url ?? '').split('?', 1)[0] ?? '') : undefined;
    if (!route) {
      sendError(res, 404, 'not_found', `no route for ${req.method} ${req.url}`);
      return;
    }
    Promise.resolve(route(res)).catch((err: unknown) => sendError(res, 500, 'internal', (err as Error).message));
  });
}
