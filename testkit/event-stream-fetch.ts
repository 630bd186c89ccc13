/**
 * A fetch over node:https for clients of the event stream (the `eventsource` package, the web
 * client library's RoomcastApi): it trusts the test CA, which the global fetch cannot be told
 * to, streams response bodies as they arrive instead of buffering them, and can cut every
 * event stream it carries (its TCP connection destroyed, as a network drop would).
 */
import https from 'node:https';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { EventSource } from 'eventsource';

export interface StreamingFetch {
  fetch: typeof fetch;
  /** An EventSource constructor whose requests go through this fetch. */
  EventSource: new (url: string) => EventSource;
  /** Destroys the connection of every open event stream; returns how many it cut. */
  cutStreams(): number;
  /** Open event-stream responses. */
  readonly openStreams: number;
  close(): void;
}

const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

export function streamingHttpsFetch(ca: Buffer): StreamingFetch {
  const agent = new https.Agent({ ca, keepAlive: true });
  const streams = new Set<Socket>();
  const fetchImpl = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      new Headers(init?.headers).forEach((v, k) => (headers[k] = v));
      const req = https.request(String(input), { method: init?.method ?? 'GET', headers, agent }, (res) => {
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers)) for (const one of [v ?? []].flat()) out.append(k, one);
        if (String(res.headers['content-type']).startsWith('text/event-stream')) {
          const socket = res.socket;
          streams.add(socket);
          res.once('close', () => streams.delete(socket));
        }
        const status = res.statusCode ?? 0;
        const body = NULL_BODY_STATUS.has(status) ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
        resolve(new Response(body, { status, headers: out }));
      });
      const signal = init?.signal;
      signal?.addEventListener('abort', () => req.destroy(new DOMException('aborted', 'AbortError')), { once: true });
      req.on('error', reject);
      req.end(typeof init?.body === 'string' ? init.body : undefined);
    });
  const f = fetchImpl as typeof fetch;
  return {
    fetch: f,
    EventSource: class extends EventSource {
      constructor(url: string) {
        super(url, { fetch: f });
      }
    },
    cutStreams() {
      const n = streams.size;
      for (const s of streams) s.destroy();
      return n;
    },
    get openStreams() {
      return streams.size;
    },
    close: () => agent.destroy(),
  };
}
