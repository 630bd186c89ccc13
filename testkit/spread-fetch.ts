/**
 * A `fetch` for simulated browsers that come from many addresses: requests go out over a few
 * kept-alive HTTPS agents, each bound to its own random loopback address (loopback-source.ts),
 * so thousands of clients in one process neither open thousands of connections nor all count
 * against the proxy's per-address limit as 127.0.0.1.
 */
import https from 'node:https';
import { loopbackSource } from './loopback-source';

export function spreadFetch(ca: string, agents = 16, socketsPerAgent = 8): typeof fetch {
  const pool = Array.from({ length: agents }, () => new https.Agent({ keepAlive: true, maxSockets: socketsPerAgent, ca, localAddress: loopbackSource() }));
  let next = 0;
  return (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input);
    const agent = pool[next++ % pool.length] as https.Agent;
    const body = typeof init?.body === 'string' ? init.body : undefined;
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    return new Promise<Response>((resolve, reject) => {
      const req = https.request(url, { method: init?.method ?? 'GET', headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') out.set(k, v);
          const status = res.statusCode ?? 502;
          resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers: out }));
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      init?.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')));
      req.end(body);
    });
  }) as typeof fetch;
}
