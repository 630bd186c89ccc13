/**
 * `npm run bench:campaigns`: bulk announcements against the real Exim on this machine, the seed's
 * point in one table (issue 15).
 *
 * 1. Pace and the 421 burst: one campaign of N recipients at the configured ceiling; a quarter
 *    of the way in, Exim answers every RCPT with 421 for a few seconds (its slow-down hook).
 *    Measured: mails/s before the burst (against the ceiling), how long the gate takes to stop
 *    sending after the first 421, how many mails ran into 421s, how long after the burst the
 *    first mail is accepted again, and the whole campaign's time.
 * 2. Exim's queue with and without the gate: Exim accepts but cannot deliver (its hold hook), as
 *    behind a dead next hop; a campaign of M recipients is sent once with no queue signal (the
 *    gate blind, as a sender without this middleware) and once with the gate watching `exim -bpc`.
 *    Measured: Exim's peak queue length and the mails handed over, in the same time.
 *
 * A runner of its own in this process (the one measured). App servers of `npm start` run runners
 * too and would share the work: stop them first (`npm stop`, then this starts the services it needs).
 * Writes bench/results/campaigns-<time>.json and .md.
 */
import { randomBytes } from 'node:crypto';
import { appServersStatus } from '../infra/app-servers';
import { ensureServices, eximQueueCount, eximQueueRun, setEximHook } from '../infra/index';
import { parseCli } from '../runtime/cli-args';
import { loadConfig, type Config } from '../runtime/config';
import type { Campaigns } from '../server/src/campaigns';
import { createPool, type Pool } from '../server/src/db/pool';
import { migrate } from '../server/src/db/migrate';
import { createLogger } from '../server/src/logger';
import { createMetrics, type Metrics } from '../server/src/metrics';
import { addMailableLearners, campaignRunner } from '../testkit/campaign-runner';
import { waitFor } from '../testkit/stomp';
import { machineFacts } from './lib/machine';
import { progress, sleep } from './lib/progress';
import { writeBenchResults } from './lib/results-file';

const USAGE = `
npm run bench:campaigns -- [options]

  --recipients N   recipients of the pace campaign (default 10000, quick 1000)
  --rate R         the ceiling, mails per second (default 100)
  --held N         recipients of each held-queue campaign (default 2000, quick 600)
  --quick          smaller runs
`;
const cli = parseCli({ recipients: { type: 'string' }, rate: { type: 'string' }, held: { type: 'string' }, quick: { type: 'boolean', default: false } }, USAGE);
const q = cli.values.quick;
const recipients = cli.values.recipients === undefined ? (q ? 1000 : 10_000) : cli.integer('recipients', 100, 100_000);
const rate = cli.values.rate === undefined ? 100 : cli.integer('rate', 1, 5000);
const heldCount = cli.values.held === undefined ? (q ? 600 : 2000) : cli.integer('held', 100, 20_000);
const BURST_MS = 5000;
const MAX_QUEUE = 500;

const { say, log } = progress();


/** A room whose `n` learners have addresses, and a campaign to them created straight in the store. */
async function campaignOf(c: Campaigns, pool: Pool, run: string, n: number, label: string): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(
    `WITH i AS (INSERT INTO users (username, display_name, role, password_hash) VALUES ($1, 'Bench instructor', 'instructor', 'x') RETURNING id)
     INSERT INTO rooms (id, name, invite_code, created_by) SELECT gen_random_uuid(), $2, $3, id FROM i RETURNING id`,
    [`bench-${run}-${label}`, `bench ${label}`, `BENCH-${run}-${label}`.toUpperCase()],
  );
  const roomId = (rows[0] as { id: string }).id;
  await addMailableLearners(pool, roomId, Array.from({ length: n }, (_, i) => `bench-${run}-${label}-${i}@bench.test`));
  const created = await c.store.create({ createdBy: null, roomIds: [roomId], subject: `bench ${label}`, text: 'A benchmark announcement.' });
  if (typeof created === 'string') throw new Error(`the bench campaign was not created: ${created}`);
  c.runner.wake();
  return created.campaign.id;
}

async function sentOf(c: Campaigns, id: string): Promise<number> {
  return (await c.store.counts(id)).sent;
}

async function runnerWith(config: Config, pool: Pool, settings: Record<string, string>, metrics: Metrics): Promise<Campaigns> {
  const withSettings = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'warn', ...settings });
  const c = await campaignRunner({ ...config, campaigns: withSettings.campaigns }, pool, createLogger(config, 'bench-campaigns'), metrics);
  c.start();
  return c;
}

/** Samples Exim's queue length every 250 ms until stopped; resolves to the peak. */
function queueSampler(config: Config): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await eximQueueCount(config));
      await sleep(250);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return Math.max(peak, await eximQueueCount(config));
    },
  };
}

async function drainExim(config: Config): Promise<void> {
  setEximHook(config, 'hold', false);
  await eximQueueRun(config);
  await waitFor(async () => (await eximQueueCount(config)) === 0, "Exim's queue to drain", 5 * 60_000, 500);
}

async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'warn' });
  await ensureServices(config, log);
  const others = (await appServersStatus(config)).filter((s) => s.up);
  if (others.length > 0) say(`warning: ${others.length} app server(s) of npm start are running; their campaign runners share the work and skew the figures (npm stop first)`);
  const pool = createPool(config, () => undefined);
  await migrate(pool);
  await pool.query('DELETE FROM mail_rate');
  const run = randomBytes(3).toString('hex');
  const startedAt = new Date().toISOString();
  try {
    // 1. Pace and the 421 burst.
    const metrics = createMetrics(async () => 0);
    const paced = await runnerWith(config, pool, { ROOMCAST_CAMPAIGN_RATE_PER_SECOND: String(rate), ROOMCAST_CAMPAIGN_RATE_PER_HOUR: '10000000' }, metrics);
    let burst: { reactionMs: number; refused: number; recoveryMs: number; sentDuring: number };
    let pace: { mailsPerSecond: number; busiestSecond: number; totalSeconds: number; peakQueue: number };
    try {
      say(`pace: a campaign of ${recipients} at ${rate} mails/s`);
      const sampler = queueSampler(config);
      const id = await campaignOf(paced, pool, run, recipients, 'pace');
      const t0 = Date.now();
      await waitFor(async () => (await sentOf(paced, id)) > 0, 'the first mail', 30_000, 20);
      const tFirst = Date.now();
      await waitFor(async () => (await sentOf(paced, id)) >= recipients / 4, 'a quarter of the campaign', 10 * 60_000, 50);
      const beforeBurst = await sentOf(paced, id);
      const mailsPerSecond = beforeBurst / ((Date.now() - tFirst) / 1000);
      say(`pace: ${mailsPerSecond.toFixed(1)} mails/s before the burst; Exim answers 421 for ${BURST_MS / 1000} s`);
      const slowDowns = async (): Promise<number> => (await metrics.campaignSends.get()).values.find((v) => v.labels.answer === 'slow_down')?.value ?? 0;
      const gateWaiting = async (): Promise<boolean> => ((await metrics.campaignGateWaiting.get()).values[0]?.value ?? 0) === 1;
      setEximHook(config, 'slow-down', true);
      const burstAt = Date.now();
      await waitFor(async () => (await slowDowns()) > 0, 'the first 421', 10_000, 5);
      const first421 = Date.now();
      await waitFor(gateWaiting, 'the gate to hold sending', 10_000, 5);
      const reactionMs = Date.now() - first421;
      const sentAtBurst = await sentOf(paced, id);
      await sleep(Math.max(0, BURST_MS - (Date.now() - burstAt)));
      setEximHook(config, 'slow-down', false);
      const offAt = Date.now();
      const sentAtOff = await sentOf(paced, id);
      await waitFor(async () => (await sentOf(paced, id)) > sentAtOff, 'the first mail after the burst', 120_000, 20);
      burst = { reactionMs, refused: await slowDowns(), recoveryMs: Date.now() - offAt, sentDuring: sentAtOff - sentAtBurst };
      say(`burst: gate held sending ${reactionMs} ms after the first 421; ${burst.refused} mails met a 421; sending again ${burst.recoveryMs} ms after the relay recovered`);
      await waitFor(async () => (await paced.store.get(id))?.state === 'done', 'the whole campaign', 30 * 60_000, 500);
      const [busiest] = (await pool.query<{ n: number }>('SELECT coalesce(max(sent), 0)::int AS n FROM mail_rate')).rows;
      pace = {
        mailsPerSecond: Number(mailsPerSecond.toFixed(1)),
        busiestSecond: busiest?.n ?? 0,
        totalSeconds: Number(((Date.now() - t0) / 1000).toFixed(1)),
        peakQueue: await sampler.stop(),
      };
      say(`pace: ${recipients} recipients in ${pace.totalSeconds} s; Exim's queue peaked at ${pace.peakQueue}`);
    } finally {
      setEximHook(config, 'slow-down', false);
      await paced.stop();
    }

    // 2. Exim cannot deliver: its queue with and without the gate.
    const held: Record<'blind' | 'gated', { peakQueue: number; handedOver: number; seconds: number }> = { blind: { peakQueue: 0, handedOver: 0, seconds: 0 }, gated: { peakQueue: 0, handedOver: 0, seconds: 0 } };
    let window = 0;
    for (const mode of ['blind', 'gated'] as const) {
      const settings: Record<string, string> = { ROOMCAST_CAMPAIGN_RATE_PER_SECOND: String(rate), ROOMCAST_CAMPAIGN_RATE_PER_HOUR: '10000000', ROOMCAST_CAMPAIGN_MAX_QUEUE: String(MAX_QUEUE) };
      if (mode === 'blind') settings.ROOMCAST_MAIL_QUEUE_COMMAND = 'none';
      setEximHook(config, 'hold', true);
      const c = await runnerWith(config, pool, settings, createMetrics(async () => 0));
      try {
        say(`held queue, ${mode === 'blind' ? 'without the gate' : 'with the gate'}: ${heldCount} recipients, Exim delivering nothing`);
        const sampler = queueSampler(config);
        const id = await campaignOf(c, pool, run, heldCount, `held-${mode}`);
        const t0 = Date.now();
        // The blind run goes until everything is handed over; the gated one gets the same time.
        if (mode === 'blind') {
          await waitFor(async () => (await sentOf(c, id)) >= heldCount, 'every mail handed over', 10 * 60_000, 200);
          window = Date.now() - t0;
        } else await sleep(window);
        held[mode] = { peakQueue: await sampler.stop(), handedOver: await sentOf(c, id), seconds: Number(((Date.now() - t0) / 1000).toFixed(1)) };
        say(`held queue, ${mode}: Exim's queue peaked at ${held[mode].peakQueue}; ${held[mode].handedOver} mails handed over in ${held[mode].seconds} s`);
        await c.store.transition(id, ['running', 'paused'], { state: 'cancelled' });
      } finally {
        await c.stop();
        await drainExim(config);
      }
    }

    const results = { machine: machineFacts(), startedAt, settings: { recipients, rate, heldCount, maxQueue: MAX_QUEUE, burstMs: BURST_MS }, pace, burst, held };
    writeBenchResults(
      {
        name: 'campaigns',
        title: 'roomcast campaigns benchmark',
        startedAt,
        machine: results.machine,
        rows: [
          [`pace at a ceiling of ${rate} mails/s (before the burst)`, `${pace.mailsPerSecond} mails/s; the busiest second of the database's clock: ${pace.busiestSecond} mails`],
          [`${recipients} recipients, burst included`, `${pace.totalSeconds} s; Exim's queue peaked at ${pace.peakQueue}`],
          ["gate's reaction to a 421 burst (first 421 → sending held)", `${burst.reactionMs} ms; ${burst.refused} mails met a 421, ${burst.sentDuring} accepted during the ${BURST_MS / 1000} s burst`],
          ['relay healthy again → first mail accepted', `${burst.recoveryMs} ms`],
          [`Exim delivering nothing, ${heldCount} recipients, without the gate`, `queue peaked at ${held.blind.peakQueue}; ${held.blind.handedOver} handed over in ${held.blind.seconds} s`],
          [`the same, with the gate (limit ${MAX_QUEUE})`, `queue peaked at ${held.gated.peakQueue}; ${held.gated.handedOver} handed over in ${held.gated.seconds} s`],
        ],
      },
      results,
    );
  } finally {
    setEximHook(config, 'slow-down', false);
    setEximHook(config, 'hold', false);
    await pool.end();
  }
}

main().catch((err: unknown) => {
  say(`error: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
