/**
 * Ingest: posters only, at a fixed high rate spread over many rooms (a single room serializes
 * on its row lock by design). Measures accepted (persisted) messages per second and POST latency.
 */
import { cpuPercent, cpuPercentByName, ProcMeter } from '../lib/proc-usage';
import { round, roundSummary, summarize, type LatencySummary } from '../../testkit/stats';
import type { Target } from '../lib/target';
import { startWorker } from '../../testkit/workers';
import type { PosterParams, PosterResult } from '../workers/poster';

export interface IngestOptions {
  rooms: number;
  ratePerSecond: number;
  durationMs: number;
  posterProcesses: number;
  progress: (line: string) => void;
}

export interface IngestResult {
  target: string;
  offeredPerSecond: number;
  acceptedPerSecond: number;
  accepted: number;
  errors: number;
  postLatencyMs: LatencySummary;
  sutCpuPercent: number;
  /** CPU of each named process of the system under test, with its children (100 = one core). */
  cpuPercentByProcess: Record<string, number>;
  loadGenCpuPercent: number;
}

export async function runIngest(target: Target, o: IngestOptions): Promise<IngestResult> {
  const prepared = await target.prepare(o.rooms, 0);
  o.progress(`${target.name}: posting ${o.ratePerSecond}/s over ${o.rooms} rooms for ${o.durationMs / 1000} s`);
  const sut = new ProcMeter(target.namedPids());
  const started = Date.now();
  const posters = Array.from({ length: o.posterProcesses }, (_, i) =>
    startWorker<PosterParams, PosterResult>(new URL('../workers/poster.ts', import.meta.url), {
      ...prepared.post,
      targets: prepared.post.targets.filter((_t, j) => j % o.posterProcesses === i),
      ratePerSecond: o.ratePerSecond / o.posterProcesses,
      durationMs: o.durationMs,
      maxInFlight: 128,
    }),
  );
  const gen = new ProcMeter(posters.map((p) => p.pid));
  const results = await Promise.all(posters.map((p) => p.done));
  const elapsedS = (Date.now() - started) / 1000;
  const sutUse = sut.read();
  const genUse = gen.read();
  const accepted = results.reduce((n, r) => n + r.latencies.length, 0);
  const wallS = Math.max(...results.map((r) => r.wallMs)) / 1000;
  const s = summarize(results.flatMap((r) => r.latencies));
  const result: IngestResult = {
    target: target.name,
    offeredPerSecond: o.ratePerSecond,
    acceptedPerSecond: round(accepted / wallS, 0),
    accepted,
    errors: results.reduce((n, r) => n + r.errors, 0),
    postLatencyMs: roundSummary(s),
    sutCpuPercent: cpuPercent(sutUse.cpuSeconds, elapsedS),
    cpuPercentByProcess: cpuPercentByName(sutUse.cpuSecondsByName, elapsedS),
    loadGenCpuPercent: cpuPercent(genUse.cpuSeconds, elapsedS),
  };
  const firstError = results.find((r) => r.firstError)?.firstError;
  if (firstError) o.progress(`${target.name}: first POST error: ${firstError}`);
  o.progress(`${target.name}: ${result.acceptedPerSecond}/s accepted, POST p50 ${result.postLatencyMs.p50} ms, p99 ${result.postLatencyMs.p99} ms`);
  return result;
}
