/**
 * Child process: posts messages at a fixed total rate over HTTP(S) for a fixed time, spread
 * round-robin over rooms, and records each POST's latency and the count accepted per room.
 * The body carries `sentAt` (ms since epoch) for the subscribers' latency.
 */
import { randomUUID } from 'node:crypto';
import { HttpClient } from '../../testkit/http-client';
import { workerMain } from '../../testkit/workers';

export interface PosterTarget {
  /** Overrides the poster's baseUrl for this room (to spread posts over app servers). */
  baseUrl?: string;
  room: string;
  /** Path of the POST, e.g. /api/rooms/<id>/messages */
  path: string;
  headers: Record<string, string>;
}

export interface PosterParams {
  baseUrl: string;
  ca?: string;
  /** roomcast wraps the payload in its send request; baselines take `{ text, sentAt }`. */
  format: 'roomcast' | 'plain';
  targets: PosterTarget[];
  ratePerSecond: number;
  durationMs: number;
  /** Upper bound of requests in flight; beyond it the poster falls behind (reported). */
  maxInFlight: number;
}

export interface PosterResult {
  latencies: number[];
  acceptedPerRoom: Record<string, number>;
  errors: number;
  firstError?: string;
  sent: number;
  wallMs: number;
}

workerMain<PosterParams, PosterResult>(async (p, _stopped, ready) => {
  const clients = new Map<string, HttpClient>();
  const clientFor = (baseUrl: string): HttpClient => {
    let c = clients.get(baseUrl);
    if (!c) clients.set(baseUrl, (c = new HttpClient(baseUrl, { ca: p.ca, maxSockets: p.maxInFlight })));
    return c;
  };
  const latencies: number[] = [];
  const acceptedPerRoom: Record<string, number> = {};
  let errors = 0;
  let firstError: string | undefined;
  let inFlight = 0;
  const pending: Promise<void>[] = [];
  ready();
  const total = Math.round((p.ratePerSecond * p.durationMs) / 1000);
  const started = Date.now();
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / p.ratePerSecond;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    while (inFlight >= p.maxInFlight) await new Promise((r) => setTimeout(r, 1));
    const target = p.targets[i % p.targets.length] as PosterTarget;
    const sentAt = performance.timeOrigin + performance.now();
    const payload =
      p.format === 'roomcast'
        ? { clientMsgId: randomUUID(), audience: 'everyone', kind: 'chat', body: { text: `m${i}`, sentAt } }
        : { text: `m${i}`, sentAt };
    inFlight++;
    pending.push(
      clientFor(target.baseUrl ?? p.baseUrl)
        .request('POST', target.path, payload, target.headers)
        .then((res) => {
          if (res.status === 201) {
            latencies.push(performance.timeOrigin + performance.now() - sentAt);
            acceptedPerRoom[target.room] = (acceptedPerRoom[target.room] ?? 0) + 1;
          } else {
            errors++;
            firstError ??= `${res.status} ${JSON.stringify(res.body)}`;
          }
        })
        .catch((err: unknown) => {
          errors++;
          firstError ??= (err as Error).message;
        })
        .finally(() => inFlight--),
    );
  }
  await Promise.all(pending);
  for (const c of clients.values()) c.close();
  return { latencies, acceptedPerRoom, errors, firstError, sent: total, wallMs: Date.now() - started };
});
