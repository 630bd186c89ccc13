/**
 * `npm run chaos`: a bounded fault-injection run over the whole system as `npm start` runs it
 * (3 RabbitMQ nodes, app servers, the TLS proxy, Postgres, Redis), with ~200 headless room
 * clients built on the web page's client library and posters at a steady rate. Faults follow a
 * schedule; at the end every POST, every stored row and every client's view are checked.
 * Exit code 0 only on PASS.
 *
 *   npm run chaos -- [--duration 120] [--rooms 8] [--viewers 24] [--rate 20] [--processes 4]
 */
import { parseCli } from '../../runtime/cli-args';
import { loadConfig } from '../../runtime/config';
import type { Logger } from '../../infra/index';
import { ensureSystem, stopFrontEnds } from '../../infra/system';
import { createLogger } from '../../server/src/logger';
import { buildServices } from '../../server/src/services';
import { faultSchedule } from './faults';
import { runRoomLoad } from './room-load';

const USAGE = `
npm run chaos -- [options]

A bounded fault-injection run over the whole system; exit code 0 only on PASS.

  --duration S    seconds of posting while faults are injected (20-3600, default 120)
  --rooms N       rooms (1-50, default 8)
  --viewers N     headless clients per room (1-200, default 24)
  --rate N        posts per second over all rooms (1-500, default 20)
  --processes N   child processes the clients and posters run in (1-16, default 4)
`;
const cli = parseCli(
  {
    duration: { type: 'string', default: '120' },
    rooms: { type: 'string', default: '8' },
    viewers: { type: 'string', default: '24' },
    rate: { type: 'string', default: '20' },
    processes: { type: 'string', default: '4' },
  },
  USAGE,
);
const durationMs = cli.integer('duration', 20, 3600) * 1000;
const rooms = cli.integer('rooms', 1, 50);
const viewers = cli.integer('viewers', 1, 200);
const rate = cli.integer('rate', 1, 500);
const processes = cli.integer('processes', 1, 16);

const t0 = Date.now();
const say = (line: string): void => void process.stdout.write(`[chaos ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
const log: Logger = { info: say, warn: (m) => say(`warning: ${m}`) };

async function main(): Promise<number> {
  const config = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'warn' });
  say(`system: ${config.rabbitmq.nodes.length} broker nodes, ${config.app.servers} app servers, proxy; ${rooms} rooms × (${viewers} learners + 1 instructor), ${rate} msg/s, ${durationMs / 1000} s of faults`);
  // What this run started, it stops at the end; a system already running (npm start) stays up.
  const { proxy, ca, started: stopAfter } = await ensureSystem(config, log);
  // The run's own broker connection sees every fault; its warnings would only drown the report.
  const services = buildServices(config, createLogger({ logLevel: 'silent' }, 'chaos'));
  await services.broker.ready(10_000);
  try {
    const report = await runRoomLoad(
      services,
      { rooms, viewers, rate, processes, durationMs, proxy: { url: proxy.url, ca, certFile: proxy.certFile }, say },
      faultSchedule(config, log),
      // Whatever a fault left broken is repaired before the final check (it reuses what runs).
      async () => void (await ensureSystem(config, log)),
    );
    for (const l of [...report.lines, report.pass ? 'PASS' : 'FAIL']) say(l);
    return report.pass ? 0 : 1;
  } finally {
    await services.close();
    if (stopAfter) await stopFrontEnds(config, log);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`error: ${(err as Error).stack ?? String(err)}`);
    process.exit(2);
  },
);
