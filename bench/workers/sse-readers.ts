/**
 * Child process: a share of the benchmark's event streams, each the web client library's
 * EventStreamClient on the `eventsource` package, through the proxy. Records POST→event latency
 * of every message (the poster puts its send time in the body), duplicates, and reconnects.
 * Answers `{type: 'count'}` with the messages received so far.
 */
import type { RoomEvent } from '../../shared/protocol/events';
import { EventStreamClient, RoomcastApi } from '../../web/src/client/index';
import { streamingHttpsFetch } from '../../testkit/event-stream-fetch';
import { reply, workerMain } from '../../testkit/workers';

export interface ReadersParams {
  baseUrl: string;
  /** CA certificate (PEM) the proxy's certificate is signed by. */
  ca: string;
  roomId: string;
  /** One session token per stream. */
  tokens: string[];
  /** Streams opened at once. */
  concurrency: number;
}

export interface ReadersResult {
  latencies: number[];
  streams: number;
  received: number;
  duplicates: number;
  /** Times a stream became live again after its first time. */
  reconnects: number;
  errors: number;
  firstError?: string;
}

/** Milliseconds since the epoch with sub-millisecond resolution, comparable across processes. */
const now = (): number => performance.timeOrigin + performance.now();

workerMain<ReadersParams, ReadersResult>(async (p, stopped, ready) => {
  const net = streamingHttpsFetch(Buffer.from(p.ca));
  const latencies: number[] = [];
  let received = 0;
  let duplicates = 0;
  let reconnects = 0;
  let errors = 0;
  let firstError: string | undefined;
  process.on('message', (m: { type: string }) => {
    if (m.type === 'count') reply(received);
  });

  const open = (token: string): Promise<EventStreamClient> =>
    new Promise((resolve) => {
      const client = new EventStreamClient({
        api: new RoomcastApi({ baseUrl: p.baseUrl, token, fetch: net.fetch }),
        roomId: p.roomId,
        EventSource: net.EventSource,
        reconnect: { initialMs: 200, maxMs: 5000 },
      });
      const seen = new Set<string>();
      let lives = 0;
      client.on('state', (s) => {
        if (s !== 'live') return;
        if (++lives === 1) resolve(client);
        else reconnects++;
      });
      client.on('error', (err) => {
        errors++;
        firstError ??= `${err.code}: ${err.message}`;
      });
      client.on('event', (e: RoomEvent) => {
        if (e.type !== 'message.created') return;
        if (seen.has(e.id)) {
          duplicates++;
          return;
        }
        seen.add(e.id);
        received++;
        const sentAt = (e.data.message.body as { sentAt?: unknown }).sentAt;
        if (typeof sentAt === 'number') latencies.push(now() - sentAt);
      });
      client.start();
    });

  const clients: EventStreamClient[] = [];
  for (let i = 0; i < p.tokens.length; i += p.concurrency) {
    clients.push(...(await Promise.all(p.tokens.slice(i, i + p.concurrency).map(open))));
  }
  ready(clients.length);
  await stopped;
  for (const c of clients) c.stop();
  net.close();
  return { latencies, streams: clients.length, received, duplicates, reconnects, errors, firstError };
});
