/**
 * `npm run bench:sse`: many event streams (SSE) through the TLS proxy following one busy room.
 *
 * One app server runs in a child process of its own (so its memory is its streams'); the proxy
 * runs here; the streams are the web client library's EventStreamClient on the `eventsource`
 * package, spread over child processes, one user and one ticket each. With every stream live,
 * the instructor posts to the room at a steady rate through the proxy.
 *
 * Reports POST→event latency over every delivery (p50/p95/p99/max), deliveries lost or
 * duplicated, and memory per stream: the app server's RSS and heap (after a full GC) with every
 * stream open, minus the same before any was opened, divided by the streams.
 *
 * Uses the services of `npm start` (started if needed). Writes bench/results/sse-<time>.json and .md.
 */
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { ensureServices } from '../infra/index';
import { createProxy } from '../proxy/src/index';
import { parseCli } from '../runtime/cli-args';
import { loadConfig } from '../runtime/config';
import { createLogger } from '../server/src/logger';
import { buildServices } from '../server/src/services';
import { makeTestCertificates } from '../testkit/certs';
import { dropBenchQueues, makeBenchRooms } from '../testkit/roomcast-fixtures';
import { round, roundSummary, summarize, type LatencySummary } from '../testkit/stats';
import { startWorker } from '../testkit/workers';
import { machineFacts } from './lib/machine';
import { ProcMeter, cpuPercentByName, sampleProc } from './lib/proc-usage';
import type { PosterParams, PosterResult } from './workers/poster';
import type { AppMemory } from './workers/sse-app';
import type { ReadersParams, ReadersResult } from './workers/sse-readers';
import { writeBenchResults } from './lib/results-file';
import { progress, sleep } from './lib/progress';

const USAGE = `
npm run bench:sse -- [options]

  --streams N    concurrent event streams, one user each (default 1000, quick 200)
  --rate R       posts per second to the room (default 10)
  --duration S   seconds of posting (default 30, quick 10)
  --workers W    child processes holding the streams (default 4)
  --quick        a smaller run
`;
const cli = parseCli(
  { streams: { type: 'string' }, rate: { type: 'string' }, duration: { type: 'string' }, workers: { type: 'string' }, quick: { type: 'boolean', default: false } },
  USAGE,
);
const quick = cli.values.quick;
const streams = cli.values.streams === undefined ? (quick ? 200 : 1000) : cli.integer('streams', 1, 20_000);
const rate = cli.values.rate === undefined ? 10 : cli.integer('rate', 1, 1000);
const durationS = cli.values.duration === undefined ? (quick ? 10 : 30) : cli.integer('duration', 1, 3600);
const workerCount = cli.values.workers === undefined ? 4 : cli.integer('workers', 1, 32);

const { say, log } = progress();
const mib = (bytes: number): number => round(bytes / 2 ** 20, 1);
const kib = (bytes: number): number => round(bytes / 1024, 1);

interface SseBench {
  machine: Record<string, string | number>;
  startedAt: string;
  setup: { streams: number; workers: number; ratePerSecond: number; durationS: number; heartbeatMs: number };
  connect: { seconds: number; streamsOpenAtServer: number };
  latency: LatencySummary;
  deliveries: { expected: number; received: number; lost: number; duplicates: number; reconnects: number; clientErrors: number; firstError?: string };
  posts: { sent: number; accepted: number; errors: number; postLatency: LatencySummary };
  memory: {
    before: AppMemory;
    withStreams: AppMemory;
    afterPosting: AppMemory;
    peakRssBytes: number;
    perStream: { rssKiB: number; heapKiB: number };
  };
  cpuPercentWhilePosting: Record<string, number>;
  /** Event-loop delay p99 while posting (ms): the proxy's loop (it runs in this process) and the app server's. */
  loopDelayP99Ms: { proxy: number; app: number };
  /** The machine's 1-minute load average before opening the streams and at the end of posting. */
  loadAverage: { before: number; whilePosting: number };
}

async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'warn' });
  await ensureServices(config, log);
  const certs = await makeTestCertificates();
  const app = startWorker<Record<string, never>, Record<string, never>>(new URL('./workers/sse-app.ts', import.meta.url), {});
  const { url: appUrl, pid: appPid } = (await app.ready) as { url: string; pid: number };
  const services = buildServices(config, createLogger(config, 'bench'));
  const proxyConfig = loadConfig({
    ...process.env,
    ROOMCAST_LOG_LEVEL: 'warn',
    ROOMCAST_PROXY_TLS_CERT: certs.certFile,
    ROOMCAST_PROXY_TLS_KEY: certs.keyFile,
    // Every stream and ticket request comes from 127.0.0.1.
    ROOMCAST_PROXY_MAX_CONNECTIONS_PER_IP: String(streams * 2 + 1000),
  });
  const proxy = await createProxy(proxyConfig, { upstreams: { app: [appUrl] }, ports: { https: 0, http: 0, admin: 0 }, logger: pino({ level: 'warn' }) });
  const baseUrl = `https://127.0.0.1:${proxy.ports.https}`;
  const startedAt = new Date().toISOString();
  const readers: ReturnType<typeof startWorker<ReadersParams, ReadersResult>>[] = [];
  const [room] = await makeBenchRooms(services, 1, streams);
  if (!room) throw new Error('no bench room');
  try {
    const memory = (): Promise<AppMemory> => app.request({ type: 'memory' }) as Promise<AppMemory>;
    await sleep(1000);
    const before = await memory();
    const loadBefore = round(os.loadavg()[0] ?? 0);
    say(`app server before any stream: RSS ${mib(before.rssBytes)} MiB, heap ${mib(before.heapUsedBytes)} MiB`);

    say(`opening ${streams} streams over ${workerCount} processes`);
    const connectStart = Date.now();
    const share = Math.ceil(streams / workerCount);
    for (let w = 0; w < workerCount; w++) {
      const tokens = room.learners.slice(w * share, (w + 1) * share).map((l) => l.token);
      if (tokens.length === 0) continue;
      readers.push(
        startWorker<ReadersParams, ReadersResult>(new URL('./workers/sse-readers.ts', import.meta.url), {
          baseUrl,
          ca: certs.ca.toString('utf8'),
          roomId: room.id,
          tokens,
          concurrency: 25,
        }),
      );
    }
    await Promise.all(readers.map((r) => r.ready));
    const connectSeconds = (Date.now() - connectStart) / 1000;
    await sleep(2000);
    const withStreams = await memory();
    say(`${withStreams.streams} streams live in ${connectSeconds.toFixed(1)} s; app server RSS ${mib(withStreams.rssBytes)} MiB, heap ${mib(withStreams.heapUsedBytes)} MiB`);

    say(`posting ${rate}/s for ${durationS} s`);
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, sampleProc(appPid)?.rssBytes ?? 0)), 500);
    const proxyLoop = monitorEventLoopDelay({ resolution: 10 });
    await memory(); // resets the app server's loop-delay histogram
    proxyLoop.enable();
    const meter = new ProcMeter({ app: appPid, proxyAndBench: process.pid, readers: readers[0]?.pid ?? process.pid });
    const postStart = Date.now();
    const poster = startWorker<PosterParams, PosterResult>(new URL('./workers/poster.ts', import.meta.url), {
      baseUrl,
      ca: certs.ca.toString('utf8'),
      format: 'roomcast',
      targets: [{ room: room.id, path: `/api/rooms/${room.id}/messages`, headers: { authorization: `Bearer ${room.instructor.token}` } }],
      ratePerSecond: rate,
      durationMs: durationS * 1000,
      maxInFlight: 50,
    });
    const posted = await poster.done;
    const accepted = posted.acceptedPerRoom[room.id] ?? 0;
    const expected = accepted * streams;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const counts = (await Promise.all(readers.map((r) => r.request({ type: 'count' })))) as number[];
      if (counts.reduce((a, b) => a + b, 0) >= expected || Date.now() > deadline) break;
      await sleep(200);
    }
    const cpu = meter.read().cpuSecondsByName;
    proxyLoop.disable();
    const loadWhilePosting = round(os.loadavg()[0] ?? 0);
    const elapsedS = (Date.now() - postStart) / 1000;
    clearInterval(sampler);
    const afterPosting = await memory();
    const results = await Promise.all(readers.map((r) => r.stop()));

    const latencies = results.flatMap((r) => r.latencies);
    const received = results.reduce((n, r) => n + r.received, 0);
    const bench: SseBench = {
      machine: machineFacts(),
      startedAt,
      setup: { streams, workers: readers.length, ratePerSecond: rate, durationS, heartbeatMs: config.streams.heartbeatMs },
      connect: { seconds: round(connectSeconds, 1), streamsOpenAtServer: withStreams.streams },
      latency: roundSummary(summarize(latencies)),
      deliveries: {
        expected,
        received,
        lost: expected - received,
        duplicates: results.reduce((n, r) => n + r.duplicates, 0),
        reconnects: results.reduce((n, r) => n + r.reconnects, 0),
        clientErrors: results.reduce((n, r) => n + r.errors, 0),
        ...(results.find((r) => r.firstError) ? { firstError: results.find((r) => r.firstError)?.firstError } : {}),
      },
      posts: { sent: posted.sent, accepted, errors: posted.errors, postLatency: roundSummary(summarize(posted.latencies)) },
      memory: {
        before,
        withStreams,
        afterPosting,
        peakRssBytes: peakRss,
        perStream: {
          rssKiB: kib((withStreams.rssBytes - before.rssBytes) / streams),
          heapKiB: kib((withStreams.heapUsedBytes - before.heapUsedBytes) / streams),
        },
      },
      // The readers' figure is one reader process's (of `workers`).
      cpuPercentWhilePosting: cpuPercentByName(cpu, elapsedS),
      loopDelayP99Ms: { proxy: round(proxyLoop.percentile(99) / 1e6), app: afterPosting.loopDelayP99Ms },
      loadAverage: { before: loadBefore, whilePosting: loadWhilePosting },
    };
    report(bench);
  } finally {
    for (const r of readers) r.kill();
    await app.stop().catch(() => undefined);
    await proxy.close({ graceMs: 1000 });
    await dropBenchQueues(services, [room]).catch(() => undefined);
    await services.close();
    certs.remove();
  }
}

function report(b: SseBench): void {
  const l = b.latency;
  const m = b.memory;
  const d = b.deliveries;
  writeBenchResults(
    {
      name: 'sse',
      title: 'roomcast event stream (SSE) benchmark',
      startedAt: b.startedAt,
      machine: b.machine,
      setup: `${b.setup.streams} streams (one user each, ${b.setup.workers} client processes) through the TLS proxy, following one room; the instructor posts ${b.setup.ratePerSecond}/s for ${b.setup.durationS} s.`,
      rows: [
        ['streams open (ticket + EventSource each)', `${b.connect.streamsOpenAtServer} in ${b.connect.seconds} s`],
        [`POST → event, over ${l.count} deliveries`, `p50 ${l.p50} ms, p95 ${l.p95} ms, p99 ${l.p99} ms, max ${l.max} ms`],
        ['deliveries', `${d.received} of ${d.expected} (lost ${d.lost}, duplicates ${d.duplicates}, reconnects ${d.reconnects}, client errors ${d.clientErrors})`],
        ['POST answered', `p50 ${b.posts.postLatency.p50} ms, p99 ${b.posts.postLatency.p99} ms (${b.posts.accepted} of ${b.posts.sent} accepted)`],
        ['app server memory per stream', `RSS ${m.perStream.rssKiB} KiB, heap ${m.perStream.heapKiB} KiB`],
        ['app server RSS: before, with streams, after posting, peak', `${mib(m.before.rssBytes)}, ${mib(m.withStreams.rssBytes)}, ${mib(m.afterPosting.rssBytes)}, ${mib(m.peakRssBytes)} MiB`],
        ['CPU while posting (% of one core)', Object.entries(b.cpuPercentWhilePosting).map(([k, v]) => `${k} ${v}`).join(', ')],
        ['event-loop delay p99 while posting', `proxy ${b.loopDelayP99Ms.proxy} ms, app server ${b.loopDelayP99Ms.app} ms`],
        [`machine load (1 min), ${os.cpus().length} cores`, `${b.loadAverage.before} before, ${b.loadAverage.whilePosting} while posting`],
      ],
    },
    b,
  );
}

main().catch((err: unknown) => {
  say(`error: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
