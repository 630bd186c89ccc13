/**
 * A stand-in app server on a free port: answers `/healthz`, echoes the request headers it
 * received on `/echo`, and holds `/hold` until the test releases it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface UpstreamStub {
  url: string;
  /** Responses of `/hold` requests, in arrival order, waiting for the test to end them. */
  held: http.ServerResponse[];
  /** Resolves when the next `/hold` request arrives. */
  nextHeld(): Promise<http.ServerResponse>;
  close(): Promise<void>;
}

export async function startUpstreamStub(): Promise<UpstreamStub> {
  const held: http.ServerResponse[] = [];
  const waiting: ((res: http.ServerResponse) => void)[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/hold') {
      held.push(res);
      waiting.shift()?.(res);
      return;
    }
    const body = req.url === '/echo' ? { headers: req.headers } : { status: 'ok' };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held,
    nextHeld: () => new Promise((resolve) => waiting.push(resolve)),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
