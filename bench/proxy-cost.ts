/**
 * `npm run bench:proxy`: what the TLS proxy costs. The same STOMP subscribers and the same
 * open-loop post rate run twice in one go: straight to the app server and the Web-STOMP nodes,
 * then through the proxy (HTTPS for the posts, WSS for the subscribers). Reported per run:
 * deliveries/s, POST→receive latency (p50/p99/max), the CPU of the proxy, app server and broker
 * processes; then the ratio. Target: the proxy costs at most 10% throughput and 2 ms at p99.
 *
 * The app server and the proxy run as child processes (the proxy from its real entry point,
 * with its development certificate), load generators in child processes of their own; all on
 * loopback, every wait bounded. A table goes to stdout, JSON to bench/results/.
 */
import { spawn, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ensureServices, nodeStatus } from '../infra/index';
import { tlsFiles } from '../proxy/src/index';
import { createLogger } from '../server/src/logger';
import type { Session } from '../server/src/sessions/session-store';
import { buildServices, type Services } from '../server/src/services';
import { loadConfig, repoRoot, type Config } from '../shared/config';
import { exchangeDestination, roomAllKey } from '../shared/protocol/routing';
import type { PosterParams, PosterResult, SubscriberParams, SubscriberResult, WorkerParams } from './proxy-cost-worker';

/** Defaults; `npm run bench:proxy -- --rooms 20 --rate 50` overrides any of the numbers. */
// 200 subscribers over 10 rooms: the send path serialises each room's sends (its seq), so a
// few crowded rooms would saturate the app server itself and measure its queue, not the proxy.
const SETTINGS = {
  rooms: 10,
  subscribersPerRoom: 20,
  ratePerSecond: 100,
  warmupMs: 2000,
  durationMs: 20_000,
  subscriberProcesses: 2,
  /** STOMP heart-beats as the browser client uses them. */
  heartbeatMs: 10_000,
  maxInFlight: 500,
};
const FLAGS: Record<string, keyof typeof SETTINGS> = {
  '--rooms': 'rooms',
  '--subscribers-per-room': 'subscribersPerRoom',
  '--rate': 'ratePerSecond',
  '--seconds': 'durationMs',
};
for (let i = 2; i < process.argv.length; i += 2) {
  const [flag, value] = [process.argv[i] ?? '', Number(process.argv[i + 1])];
  const key = FLAGS[flag];
  if (!key || !Number.isFinite(value) || value <= 0) throw new Error(`usage: bench:proxy [${Object.keys(FLAGS).join(' N] [')} N]`);
  // Bounded: a run never exceeds what a developer's machine and a few minutes allow.
  SETTINGS[key] = Math.min(key === 'durationMs' ? value * 1000 : value, key === 'durationMs' ? 120_000 : 1000);
}
const TARGET = { throughputRatio: 0.9, p99DeltaMs: 2 };
const CLK_TCK = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const progress = (line: string): boolean => process.stderr.write(`[bench] ${line}\n`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Busy and total CPU time of the whole machine so far (all cores), from /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  // idle and iowait are the 4th and 5th fields
  return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
}

/** user + system CPU seconds of a process so far, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

async function waitHealthy(url: string, child: ChildProcess, name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) while starting`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) return;
    await sleep(200);
  }
  throw new Error(`${name} did not answer ${url} within 60 s`);
}

/** One of our services as a child process, from its real entry point, logging to a file. */
async function startChild(config: Config, name: string, entry: string, env: Record<string, string>, healthUrl: string): Promise<ChildProcess> {
  const logDir = path.join(config.dataDir, 'log');
  mkdirSync(logDir, { recursive: true });
  const out = openSync(path.join(logDir, `bench-${name}.log`), 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, entry)], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', out, out],
  });
  await waitHealthy(healthUrl, child, name);
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000).then(() => child.kill('SIGKILL'))]);
}

interface Worker<R> {
  pid: number;
  ready: Promise<void>;
  stop(): Promise<R>;
}

function startWorker<R>(params: WorkerParams): Worker<R> {
  const child = fork(path.join(repoRoot, 'bench', 'proxy-cost-worker.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let onReady!: () => void;
  let onResult!: (r: R) => void;
  let onError!: (e: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onError = reject;
  });
  const result = new Promise<R>((resolve, reject) => {
    onResult = resolve;
    child.once('exit', (code) => reject(new Error(`${params.role} worker exited (${code}) without a result`)));
  });
  result.catch(() => undefined); // reported through stop()
  child.on('message', (m: { type: string; result?: R; message?: string }) => {
    if (m.type === 'ready') onReady();
    else if (m.type === 'result') onResult(m.result as R);
    else if (m.type === 'error') onError(new Error(`${params.role} worker: ${m.message}`));
  });
  child.send({ type: 'start', params });
  return {
    pid: child.pid ?? 0,
    ready: withTimeout(ready, 120_000, `${params.role} worker to get ready`),
    stop: () => {
      child.send({ type: 'stop' });
      return withTimeout(result, 60_000, `${params.role} worker's result`);
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number);
}

/** `ms` of each POST the service logged between `from` and `to` (epoch ms), by request id. */
function loggedPosts(file: string, from: number, to: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('"msg":"request"') || !line.includes('"method":"POST"')) continue;
    const entry = JSON.parse(line) as { reqId: string; ms: number; time: number };
    if (entry.time >= from && entry.time <= to) out.set(entry.reqId, entry.ms);
  }
  return out;
}

/**
 * The proxy's own share of each proxied POST: its access-log time minus the app server's for
 * the same request id. Unlike end-to-end latency, this hardly moves with other load on the
 * machine, which slows the app server, Postgres and RabbitMQ alike.
 */
function hopOverhead(logDir: string, from: number, to: number): { count: number; p50: number; p99: number; max: number } {
  const proxied = loggedPosts(path.join(logDir, 'bench-proxy.log'), from, to);
  const served = loggedPosts(path.join(logDir, 'bench-app.log'), from, to + 60_000);
  const diffs = Float64Array.from([...proxied].flatMap(([id, ms]) => (served.has(id) ? [ms - (served.get(id) as number)] : []))).sort();
  return { count: diffs.length, p50: percentile(diffs, 0.5), p99: percentile(diffs, 0.99), max: diffs[diffs.length - 1] ?? NaN };
}

/**
 * The proxy's event-loop delay (ms) since the previous scrape, from prom-client's default
 * metrics on its admin port; a scrape also resets the window.
 */
async function eventLoopLag(adminUrl: string): Promise<{ p50: number; p99: number; max: number }> {
  const text = await (await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const read = (name: string): number => 1000 * Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { p50: read('nodejs_eventloop_lag_p50_seconds'), p99: read('nodejs_eventloop_lag_p99_seconds'), max: read('nodejs_eventloop_lag_max_seconds') };
}

interface Fixture {
  rooms: { id: string; token: string; learners: { session: string; userId: string }[] }[];
}

/** Rooms with an instructor (who posts) and learners (who subscribe), under unique names. */
async function makeFixture(services: Services): Promise<Fixture> {
  const tag = randomBytes(4).toString('hex');
  const password = randomBytes(12).toString('hex');
  const login = async (username: string, role: Session['role']): Promise<{ session: Session; token: string }> => {
    const user = await services.users.create({ username, displayName: username, role, password });
    const session: Session = { userId: user.id, username, displayName: username, role };
    return { session, token: (await services.sessions.create(session)).token };
  };
  const rooms: Fixture['rooms'] = [];
  for (let r = 0; r < SETTINGS.rooms; r++) {
    const instructor = await login(`bench-${tag}-i${r}`, 'instructor');
    const room = await services.roomService.create(instructor.session, `bench ${tag} ${r}`);
    const learners: Fixture['rooms'][number]['learners'] = [];
    // A few at a time: each is a scrypt hash, the CPU-heavy part of the set-up.
    for (let i = 0; i < SETTINGS.subscribersPerRoom; i += 4) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(4, SETTINGS.subscribersPerRoom - i) }, async (_, j) => {
          const l = await login(`bench-${tag}-r${r}-l${i + j}`, 'learner');
          await services.roomService.join(l.session, room.inviteCode);
          return { session: l.token, userId: l.session.userId };
        }),
      );
      learners.push(...batch);
    }
    rooms.push({ id: room.id, token: instructor.token, learners });
  }
  return { rooms };
}

interface PhaseResult {
  deliveriesPerSecond: number;
  delivered: number;
  expected: number;
  dropped: number;
  latencyMs: { p50: number; p99: number; max: number };
  postMs: { p50: number; p99: number };
  postStatuses: Record<string, number>;
  skippedPosts: number;
  cpuPercent: { proxy: number; app: number; brokers: number };
  /** How busy all cores were during the run (other work on the machine included), and its load. */
  machine: { busyPercent: number; loadAverage: number };
  /** The proxy's event-loop delay during the run, ms (10 ms sampling resolution). */
  proxyEventLoopLagMs: { p50: number; p99: number; max: number };
  /** Measured-window wall-clock bounds (epoch ms), for reading the services' logs. */
  window: { from: number; to: number };
}

async function runPhase(
  name: string,
  services: Services,
  fixture: Fixture,
  target: { postUrl: string; stompUrl: (i: number) => string; ca?: string },
  pids: { proxy: number; app: number; brokers: number[] },
  proxyAdminUrl: string,
): Promise<PhaseResult> {
  const specs: SubscriberParams['clients'] = [];
  for (const room of fixture.rooms) {
    for (const l of room.learners) {
      const { passcode } = await services.sessions.issueBrokerToken(l.session, l.userId);
      specs.push({ url: target.stompUrl(specs.length), login: l.userId, passcode, destination: exchangeDestination(roomAllKey(room.id)) });
    }
  }
  progress(`${name}: connecting ${specs.length} subscribers`);
  const subscribers = Array.from({ length: SETTINGS.subscriberProcesses }, (_, w) =>
    startWorker<SubscriberResult>({
      role: 'subscribers',
      ca: target.ca,
      clients: specs.filter((_, i) => i % SETTINGS.subscriberProcesses === w),
      concurrency: 10,
      heartbeatMs: SETTINGS.heartbeatMs,
    }),
  );
  await Promise.all(subscribers.map((s) => s.ready));

  progress(`${name}: posting ${SETTINGS.ratePerSecond} msg/s for ${(SETTINGS.warmupMs + SETTINGS.durationMs) / 1000} s (the first ${SETTINGS.warmupMs / 1000} s not measured)`);
  const cpu = (): { proxy: number; app: number; brokers: number } => ({
    proxy: cpuSeconds(pids.proxy),
    app: cpuSeconds(pids.app),
    brokers: pids.brokers.reduce((sum, pid) => sum + cpuSeconds(pid), 0),
  });
  const params: PosterParams = {
    role: 'poster',
    baseUrl: target.postUrl,
    ca: target.ca,
    rooms: fixture.rooms.map((r) => ({ id: r.id, token: r.token })),
    ratePerSecond: SETTINGS.ratePerSecond,
    warmupMs: SETTINGS.warmupMs,
    durationMs: SETTINGS.durationMs,
    maxInFlight: SETTINGS.maxInFlight,
  };
  const poster = startWorker<PosterResult>(params);
  await poster.ready;
  await eventLoopLag(proxyAdminUrl);
  const before = cpu();
  const machineBefore = machineTicks();
  const startedAt = performance.now();
  const window = { from: Date.now() + SETTINGS.warmupMs, to: 0 };
  const posted = await poster.stop();
  window.to = Date.now();
  const wallSeconds = (performance.now() - startedAt) / 1000;
  const after = cpu();
  const proxyEventLoopLagMs = await eventLoopLag(proxyAdminUrl);
  const machineAfter = machineTicks();
  const loadAverage = os.loadavg()[0] ?? NaN;
  // Deliveries of the last posts are in flight for a few ms; give them ample time.
  await sleep(2000);
  const got = await Promise.all(subscribers.map((s) => s.stop()));

  const latencies = Float64Array.from(got.flatMap((g) => g.latencies)).sort();
  const postLatencies = Float64Array.from(posted.postLatencies).sort();
  const delivered = got.reduce((n, g) => n + g.delivered, 0);
  const expected = fixture.rooms.reduce((n, r) => n + (posted.createdPerRoom[r.id] ?? 0) * r.learners.length, 0);
  const pct = (k: keyof typeof before): number => (100 * (after[k] - before[k])) / wallSeconds;
  return {
    deliveriesPerSecond: delivered / (SETTINGS.durationMs / 1000),
    delivered,
    expected,
    dropped: got.reduce((n, g) => n + g.dropped, 0),
    latencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), max: latencies[latencies.length - 1] ?? NaN },
    postMs: { p50: percentile(postLatencies, 0.5), p99: percentile(postLatencies, 0.99) },
    postStatuses: posted.statuses,
    skippedPosts: posted.skipped,
    cpuPercent: { proxy: pct('proxy'), app: pct('app'), brokers: pct('brokers') },
    machine: { busyPercent: (100 * (machineAfter.busy - machineBefore.busy)) / (machineAfter.total - machineBefore.total), loadAverage },
    proxyEventLoopLagMs,
    window,
  };
}

function table(results: Record<string, PhaseResult>, ratio: number, p50Delta: number, p99Delta: number): string {
  const f = (v: number, d = 2): string => (Number.isFinite(v) ? v.toFixed(d) : '-');
  const head = ['', 'deliveries/s', 'delivered/expected', 'p50 ms', 'p99 ms', 'max ms', 'POST p50', 'POST p99', 'proxy CPU %', 'app CPU %', 'brokers CPU %', 'machine busy %', 'load'];
  const rows = Object.entries(results).map(([name, r]) => [
    name,
    f(r.deliveriesPerSecond, 0),
    `${r.delivered}/${r.expected}`,
    f(r.latencyMs.p50),
    f(r.latencyMs.p99),
    f(r.latencyMs.max),
    f(r.postMs.p50),
    f(r.postMs.p99),
    f(r.cpuPercent.proxy, 1),
    f(r.cpuPercent.app, 1),
    f(r.cpuPercent.brokers, 1),
    f(r.machine.busyPercent, 0),
    f(r.machine.loadAverage, 1),
  ]);
  const signed = (v: number): string => `${v >= 0 ? '+' : ''}${f(v)}`;
  rows.push(['proxy/direct', `x${f(ratio, 3)}`, '', signed(p50Delta), signed(p99Delta), '', '', '', '', '', '', '', '']);
  const widths = head.map((_, i) => Math.max(...[head, ...rows].map((r) => (r[i] ?? '').length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: 'warn' });
  await ensureServices(config, { info: () => undefined, warn: (m) => progress(`warning: ${m}`) });
  const brokers = (await nodeStatus(config)).map((n) => n.pid).filter((p): p is number => p !== null);
  const [appPort, httpsPort, httpPort, adminPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const appUrl = `http://127.0.0.1:${appPort}`;

  const services = buildServices(config, createLogger(config, 'bench'));
  const children: ChildProcess[] = [];
  try {
    progress('starting an app server and the proxy (child processes)');
    // Both log at info, as in production: the proxy's access log is part of what it costs.
    const app = await startChild(config, 'app', 'server/src/main.ts', { ROOMCAST_APP_PORT: String(appPort), ROOMCAST_LOG_LEVEL: 'info' }, `${appUrl}/healthz`);
    children.push(app);
    const proxy = await startChild(
      config,
      'proxy',
      'proxy/src/main.ts',
      {
        ROOMCAST_APP_PORT: String(appPort),
        ROOMCAST_APP_SERVERS: '1',
        ROOMCAST_PROXY_HOST: '127.0.0.1',
        ROOMCAST_PROXY_HTTPS_PORT: String(httpsPort),
        ROOMCAST_PROXY_HTTP_PORT: String(httpPort),
        ROOMCAST_PROXY_ADMIN_PORT: String(adminPort),
        ROOMCAST_LOG_LEVEL: 'info',
      },
      `http://127.0.0.1:${adminPort}/healthz`,
    );
    children.push(proxy);
    const ca = readFileSync(tlsFiles(config).certFile, 'utf8');
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    const pids = { proxy: proxy.pid ?? 0, app: app.pid ?? 0, brokers };

    progress(`making ${SETTINGS.rooms} rooms with ${SETTINGS.subscribersPerRoom} learners each`);
    const fixture = await makeFixture(services);
    const nodes = config.rabbitmq.nodes;
    const results: Record<string, PhaseResult> = {};
    results.direct = await runPhase('direct', services, fixture, { postUrl: appUrl, stompUrl: (i) => `ws://127.0.0.1:${nodes[i % nodes.length]!.webStompPort}/ws` }, pids, adminUrl);
    results.proxy = await runPhase('proxy', services, fixture, { postUrl: `https://127.0.0.1:${httpsPort}`, stompUrl: () => `wss://127.0.0.1:${httpsPort}/ws`, ca }, pids, adminUrl);

    const ratio = results.proxy.deliveriesPerSecond / results.direct.deliveriesPerSecond;
    const p50Delta = results.proxy.latencyMs.p50 - results.direct.latencyMs.p50;
    const p99Delta = results.proxy.latencyMs.p99 - results.direct.latencyMs.p99;
    const hop = hopOverhead(path.join(config.dataDir, 'log'), results.proxy.window.from, results.proxy.window.to);
    const verdict = {
      throughput: ratio >= TARGET.throughputRatio ? 'met' : 'missed',
      p99: p99Delta <= TARGET.p99DeltaMs ? 'met' : 'missed',
    };
    process.stdout.write(
      [
        '',
        `proxy cost: ${fixture.rooms.length * SETTINGS.subscribersPerRoom} STOMP subscribers over ${SETTINGS.rooms} rooms, ${SETTINGS.ratePerSecond} posts/s for ${SETTINGS.durationMs / 1000} s, ${os.cpus().length} CPUs`,
        table(results, ratio, p50Delta, p99Delta),
        `latency: POST sent -> STOMP MESSAGE received; process CPU in % of one core, machine busy in % of all ${os.cpus().length} cores (other work included)`,
        `the proxy's event-loop delay while proxying: p50 ${results.proxy.proxyEventLoopLagMs.p50.toFixed(2)} ms, p99 ${results.proxy.proxyEventLoopLagMs.p99.toFixed(2)} ms, max ${results.proxy.proxyEventLoopLagMs.max.toFixed(2)} ms`,
        `the proxy's own time per proxied POST (its access log minus the app server's, ${hop.count} posts): p50 ${hop.p50.toFixed(2)} ms, p99 ${hop.p99.toFixed(2)} ms, max ${hop.max.toFixed(2)} ms`,
        `target: throughput x >= ${TARGET.throughputRatio} (${verdict.throughput}), p99 +<= ${TARGET.p99DeltaMs} ms (${verdict.p99})`,
        '',
      ].join('\n'),
    );
    const dir = path.join(repoRoot, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `proxy-cost-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version };
    writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, settings: SETTINGS, target: TARGET, results, ratio, p50Delta, p99Delta, proxyHopMs: hop, verdict }, null, 2)}\n`);
    progress(`results written to ${path.relative(repoRoot, file)}`);
  } finally {
    await Promise.all(children.map(stopChild));
    await services.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
