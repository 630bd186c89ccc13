/**
 * `npm run bench`: every scenario against roomcast (through the proxy, and direct as baseline
 * (a)) and the baselines (b) Socket.IO + Redis adapter + Postgres and (c) bare ws, in one run on
 * this machine. Writes bench/results/bench-<time>.json and .md and prints the table.
 * Options: `npm run bench -- --help` (USAGE below).
 *
 * `proxy` (npm run bench:proxy) is the proxy's cost alone: the same subscribers and post rate
 * through the proxy and straight to the app servers and Web-STOMP, with the proxy's CPU.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseCli } from '../runtime/cli-args';
import { loadConfig, repoRoot } from '../runtime/config';
import { appServersStatus } from '../infra/app-servers';
import { servicesStatus } from '../infra/index';
import { proxyStatus } from '../infra/proxy-service';
import { ensureSystem, stopFrontEnds } from '../infra/system';
import { createLogger } from '../server/src/logger';
import { buildServices } from '../server/src/services';
import { machineFacts } from './lib/machine';
import { markdown, type Results } from './lib/report';
import type { Target } from './lib/target';
import { runConnections } from './scenarios/connections';
import { runFanout } from './scenarios/fanout';
import { runIngest } from './scenarios/ingest';
import { runRecovery } from './scenarios/recovery';
import { runSaturation } from './scenarios/saturation';
import { charts } from './lib/charts';
import { socketIoRoomcastTarget, socketIoTarget, wsTarget } from './targets/baselines';
import { haproxyTarget } from './targets/haproxy';
import { roomcastTarget } from './targets/roomcast';
import { progress } from './lib/progress';

const SCENARIOS = ['fanout', 'throughput', 'saturation', 'ingest', 'connections', 'recovery', 'proxy'] as const;
const TARGETS = ['proxy', 'haproxy', 'direct', 'socketio', 'socketio-roomcast', 'ws'] as const;
const USAGE = `
npm run bench -- [options]

Runs each scenario against roomcast (through the proxy, and direct) and the baselines
(Socket.IO + Redis + Postgres, bare ws) on this machine; writes bench/results/bench-<time>.json
and .md and prints the table.

  --scenario S       ${SCENARIOS.join(' | ')} | all (default all; all leaves out proxy)
  --target T,...     any of ${TARGETS.join(', ')}, or all (default all)
                     haproxy: roomcast through HAProxy (apt-get install -y haproxy) instead
                     of the proxy; socketio-roomcast: Socket.IO doing roomcast's per-message work
  --quick            shorter runs and smaller loads, for a first look
  --connections N    the connections scenario's size (default 10000, quick 1000)
  --hold-seconds S   how long the connections scenario holds them (default 15, quick 5)
  --recovery-clients N  clients live when the recovery scenario kills a broker node
                     (default 3000, quick 200)

npm run bench:<scenario> runs one scenario, e.g. npm run bench:ingest -- --quick.
`;
const cli = parseCli(
  {
    scenario: { type: 'string', default: 'all' },
    target: { type: 'string', default: 'all' },
    quick: { type: 'boolean', default: false },
    connections: { type: 'string' },
    'hold-seconds': { type: 'string' },
    'recovery-clients': { type: 'string' },
  },
  USAGE,
);
const args = cli.values;
// `all` is every comparison; `proxy` repeats part of `fanout`, so it runs only when asked for.
const chosen = args.scenario === 'all' ? SCENARIOS.filter((s) => s !== 'proxy') : [args.scenario as (typeof SCENARIOS)[number]];
if (chosen.some((s) => !SCENARIOS.includes(s))) cli.fail(`--scenario must be one of ${SCENARIOS.join(', ')} or all, got ${args.scenario}`);
const onlyTargets = args.target === 'all' ? [...TARGETS] : (args.target ?? '').split(',');
if (onlyTargets.some((t) => !(TARGETS as readonly string[]).includes(t))) cli.fail(`--target must be all or a comma-separated list of ${TARGETS.join(', ')}, got ${args.target}`);
const q = args.quick;
const connectionCount = args.connections === undefined ? (q ? 1000 : 10_000) : cli.integer('connections', 1, 100_000);
// 10,000 is the target, but each live client of the web library also reports presence every
// 10 s: 3,000 of them are 300 requests/s before anything is sent, which is what this 2-core
// machine can carry beside the storm (docs/performance.md).
const recoveryClients = args['recovery-clients'] === undefined ? (q ? 200 : 3_000) : cli.integer('recovery-clients', 1, 100_000);
const holdMs = (args['hold-seconds'] === undefined ? (q ? 5 : 15) : cli.integer('hold-seconds', 1, 600)) * 1000;

const t0 = Date.now();
const { say, log } = progress();


async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'warn' });
  const { appUrls, proxy, ca, started } = await ensureSystem(config, log);
  const services = buildServices(config, createLogger({ logLevel: 'silent' }, 'bench'));
  await services.broker.ready(10_000);
  const pids: Record<string, number> = {};
  for (const s of [...(await servicesStatus(config)), ...(await appServersStatus(config)), await proxyStatus(config)]) {
    if (s.pid) pids[s.name.startsWith('rabbitmq') ? `rabbitmq ${s.name.split(' ')[1]}` : s.name] = s.pid;
  }
  const sys = { config, proxyUrl: proxy.url, ca, appUrls, pids };
  const viaProxy = roomcastTarget(services, sys, { label: 'proxy', url: proxy.url, pidName: 'proxy', pid: pids.proxy as number });
  const direct = roomcastTarget(services, sys, null);
  const backing = Object.fromEntries(Object.entries(pids).filter(([n]) => n === 'postgres' || n === 'redis'));
  const results: Results = { machine: machineFacts(), startedAt: new Date().toISOString(), quick: q };
  say(`machine: ${JSON.stringify(results.machine)}`);

  const allTargets = async (fn: (t: Target) => Promise<void>): Promise<void> => {
    const makers = {
      proxy: async () => viaProxy,
      haproxy: () => haproxyTarget(services, sys),
      direct: async () => direct,
      socketio: () => socketIoTarget(config, backing),
      'socketio-roomcast': () => socketIoRoomcastTarget(services, backing),
      ws: () => wsTarget(),
    };
    for (const name of onlyTargets) {
      const t = await makers[name as (typeof TARGETS)[number]]();
      try {
        await fn(t);
      } finally {
        await t.stop();
      }
    }
  };

  try {
    if (chosen.includes('fanout')) {
      results.fanout = [];
      await allTargets(async (t) => {
        results.fanout?.push(
          await runFanout(t, { rooms: 1, subscribersPerRoom: q ? 100 : 500, ratePerSecond: 10, durationMs: q ? 5000 : 20_000, subscriberProcesses: 2, progress: say }),
        );
      });
    }
    if (chosen.includes('throughput')) {
      results.throughput = [];
      await allTargets(async (t) => {
        results.throughput?.push(
          await runFanout(t, { rooms: 10, subscribersPerRoom: q ? 20 : 50, ratePerSecond: q ? 50 : 200, durationMs: q ? 5000 : 15_000, subscriberProcesses: 2, progress: say }),
        );
      });
    }
    if (chosen.includes('saturation')) {
      results.saturation = [];
      await allTargets(async (t) => {
        results.saturation?.push(
          await runSaturation(t, {
            rooms: 10,
            subscribersPerRoom: q ? 20 : 50,
            startRate: 20,
            maxRate: 2560,
            stepMs: q ? 4000 : 8000,
            p99LimitMs: 100,
            refineSteps: q ? 1 : 2,
            subscriberProcesses: 2,
            progress: say,
          }),
        );
      });
    }
    if (chosen.includes('ingest')) {
      results.ingest = [];
      await allTargets(async (t) => {
        results.ingest?.push(await runIngest(t, { rooms: 50, ratePerSecond: q ? 500 : 2500, durationMs: q ? 3000 : 10_000, posterProcesses: 2, progress: say }));
      });
    }
    if (chosen.includes('proxy')) {
      results.proxy = [];
      for (const t of [viaProxy, direct]) {
        results.proxy.push(await runFanout(t, { rooms: 10, subscribersPerRoom: 20, ratePerSecond: q ? 50 : 100, durationMs: q ? 5000 : 20_000, subscriberProcesses: 2, progress: say }));
        await t.stop();
      }
    }
    if (chosen.includes('connections')) {
      results.connections = await runConnections(viaProxy, { connections: connectionCount, rooms: 20, holdMs, clientProcesses: 4, progress: say });
      await viaProxy.stop();
    }
    if (chosen.includes('recovery')) {
      results.recovery = await runRecovery(services, config, { url: proxy.url, ca, certFile: proxy.certFile }, {
        awayClients: q ? 20 : 100,
        missedMessages: q ? 200 : 1000,
        liveClients: recoveryClients,
        clientProcesses: 4,
        pids,
        progress: say,
      });
    }
  } finally {
    await services.close();
    if (started) await stopFrontEnds(config, log);
  }
  results.durationSeconds = Math.round((Date.now() - t0) / 1000);
  const dir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = results.startedAt.replace(/[:.]/g, '-');
  const md = markdown(results);
  writeFileSync(path.join(dir, `bench-${stamp}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(dir, `bench-${stamp}.md`), md);
  const pictures = charts(results);
  for (const [name, svg] of Object.entries(pictures)) writeFileSync(path.join(dir, `bench-${stamp}-${name}.svg`), svg);
  process.stdout.write(`\n${md}\nresults: bench/results/bench-${stamp}.{json,md}${Object.keys(pictures).map((n) => `, bench-${stamp}-${n}.svg`).join('')}\n`);
}

main().catch((err: unknown) => {
  say(`error: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
