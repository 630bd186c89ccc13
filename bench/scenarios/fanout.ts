/**
 * Fan-out: R rooms × S subscribers, posters at a fixed total rate. Measures POST→receive latency
 * at every subscriber, deliveries per second, and checks that every subscriber got every message
 * accepted for its room exactly once (loss and duplicates must be 0).
 */
import { cpuPercent, cpuPercentByName, ProcMeter } from '../lib/proc-usage';
import { cdf, round, roundSummary, summarize, type LatencySummary } from '../../testkit/stats';
import type { Target } from '../lib/target';
import { startWorker } from '../../testkit/workers';
import type { PosterParams, PosterResult } from '../workers/poster';
import type { ClientSpec, SubscribersParams, SubscribersResult } from '../workers/subscribers';

export interface FanoutOptions {
  rooms: number;
  subscribersPerRoom: number;
  ratePerSecond: number;
  durationMs: number;
  /** Child processes the subscribers are spread over. */
  subscriberProcesses: number;
  progress: (line: string) => void;
}

export interface FanoutResult {
  target: string;
  rooms: number;
  subscribers: number;
  ratePerSecond: number;
  posted: number;
  postErrors: number;
  expectedDeliveries: number;
  deliveries: number;
  lost: number;
  duplicates: number;
  deliveriesPerSecond: number;
  latencyMs: LatencySummary;
  /** POST→receive latency CDF, [fraction, ms], for the report's picture. */
  latencyCdf: [number, number][];
  postLatencyMs: LatencySummary;
  sutCpuPercent: number;
  /** CPU of each named process of the system under test (100 = one core). */
  cpuPercentByProcess: Record<string, number>;
  sutRssMiB: number;
  loadGenCpuPercent: number;
  connectFailures: number;
}

/** Time after the last post for deliveries to arrive; deliveries per second count it. */
export const DRAIN_MS = 3000;

export async function runFanout(target: Target, o: FanoutOptions): Promise<FanoutResult> {
  o.progress(`${target.name}: preparing ${o.rooms} rooms × ${o.subscribersPerRoom} subscribers`);
  const prepared = await target.prepare(o.rooms, o.subscribersPerRoom);
  const shares: ClientSpec[][] = Array.from({ length: o.subscriberProcesses }, () => []);
  prepared.clients.forEach((c, i) => shares[i % o.subscriberProcesses]?.push(c));
  const subs = shares.map((clients) =>
    startWorker<SubscribersParams, SubscribersResult>(new URL('../workers/subscribers.ts', import.meta.url), { clients, ca: prepared.post.ca, concurrency: 50, heartbeatMs: 10_000 }),
  );
  await Promise.all(subs.map((s) => s.ready));
  o.progress(`${target.name}: ${prepared.clients.length} subscribers connected; posting ${o.ratePerSecond}/s for ${o.durationMs / 1000} s`);

  const sut = new ProcMeter(target.namedPids());
  const started = Date.now();
  const poster = startWorker<PosterParams, PosterResult>(new URL('../workers/poster.ts', import.meta.url), {
    ...prepared.post,
    ratePerSecond: o.ratePerSecond,
    durationMs: o.durationMs,
    maxInFlight: 64,
  });
  const loadGen = new ProcMeter([poster.pid, ...subs.map((s) => s.pid)]);
  const posted = await poster.done;
  await new Promise((r) => setTimeout(r, DRAIN_MS));
  const elapsedS = (Date.now() - started) / 1000;
  const sutUse = sut.read();
  const genUse = loadGen.read();
  const results = await Promise.all(subs.map((s) => s.stop()));

  const latencies = results.flatMap((r) => r.latencies);
  let expected = 0;
  let deliveries = 0;
  let duplicates = 0;
  for (const r of results) {
    for (const c of r.clients) {
      expected += posted.acceptedPerRoom[c.room] ?? 0;
      deliveries += c.distinct;
      duplicates += c.duplicates;
    }
  }
  const failed = results.reduce((n, r) => n + r.failed, 0);
  const result: FanoutResult = {
    target: target.name,
    rooms: o.rooms,
    subscribers: prepared.clients.length,
    ratePerSecond: o.ratePerSecond,
    posted: posted.sent - posted.errors,
    postErrors: posted.errors,
    expectedDeliveries: expected,
    deliveries,
    lost: expected - deliveries,
    duplicates,
    // Deliveries over the posting window plus the drain: the offered load when keeping up.
    deliveriesPerSecond: round(deliveries / ((posted.wallMs + DRAIN_MS) / 1000), 0),
    latencyMs: roundSummary(summarize(latencies)),
    latencyCdf: cdf(latencies),
    postLatencyMs: roundSummary(summarize(posted.latencies)),
    sutCpuPercent: cpuPercent(sutUse.cpuSeconds, elapsedS),
    cpuPercentByProcess: cpuPercentByName(sutUse.cpuSecondsByName, elapsedS),
    sutRssMiB: round(sutUse.rssBytes / 2 ** 20, 1),
    loadGenCpuPercent: cpuPercent(genUse.cpuSeconds, elapsedS),
    connectFailures: failed,
  };
  if (posted.firstError) o.progress(`${target.name}: first POST error: ${posted.firstError}`);
  o.progress(
    `${target.name}: ${result.deliveries}/${result.expectedDeliveries} delivered, lost ${result.lost}, dup ${result.duplicates}, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms`,
  );
  return result;
}
