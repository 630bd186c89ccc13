/**
 * `npm run bench:mail`: the mail channel against the real Exim on this machine.
 *
 * 1. Throughput: N mails queued at once, sent by an app server's sender over its pooled SMTP
 *    connection; mails per second from the commit of the queue until the last is in the Maildir.
 * 2. Latency: instructors' private replies to offline learners, posted at a steady rate through
 *    an app server; per message, the time from its commit (`created_at`) to its notification's
 *    delivery into the Maildir (the file's time), p50/p99.
 *
 * Uses the services of `npm start` (started if needed); app servers already running take part in
 * sending like the one this starts. Writes bench/results/mail-<time>.json and .md.
 */
import { randomBytes } from 'node:crypto';
import { parseCli } from '../runtime/cli-args';
import { loadConfig } from '../runtime/config';
import { ensureServices, maildirFiles, maildirTag } from '../infra/index';
import { startAppServer } from '../server/src/app';
import { inTransaction } from '../server/src/db/pool';
import { MAIL_QUEUE, type MailJob } from '../server/src/mail/mail-job';
import { JobQueue } from '../server/src/work/job-queue';
import { makeBenchRooms } from '../testkit/roomcast-fixtures';
import { roundSummary, summarize, type LatencySummary } from '../testkit/stats';
import { waitFor } from '../testkit/stomp';
import { machineFacts } from './lib/machine';
import { progress, sleep } from './lib/progress';
import { writeBenchResults } from './lib/results-file';

const USAGE = `
npm run bench:mail -- [options]

  --mails N      mails queued at once for the throughput run (default 2000, quick 300)
  --replies N    private replies for the latency run (default 200, quick 50)
  --rate R       replies per second (default 10)
  --quick        smaller runs
`;
const cli = parseCli(
  { mails: { type: 'string' }, replies: { type: 'string' }, rate: { type: 'string' }, quick: { type: 'boolean', default: false } },
  USAGE,
);
const q = cli.values.quick;
const mailCount = cli.values.mails === undefined ? (q ? 300 : 2000) : cli.integer('mails', 1, 100_000);
const replyCount = cli.values.replies === undefined ? (q ? 50 : 200) : cli.integer('replies', 1, 10_000);
const rate = cli.values.rate === undefined ? 10 : cli.integer('rate', 1, 1000);

const { say, log } = progress();


interface MailBench {
  machine: Record<string, string | number>;
  startedAt: string;
  throughput: { mails: number; seconds: number; mailsPerSecond: number };
  latency: { replies: number; ratePerSecond: number; commitToMailboxMs: LatencySummary };
}

async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'warn' });
  await ensureServices(config, log);
  // An app server on a free port: its mail workers are the ones measured (with any others running).
  const app = await startAppServer(config, { port: 0 });
  const { pool } = app.services;
  const run = randomBytes(4).toString('hex');
  const startedAt = new Date().toISOString();
  try {
    // 1. Throughput: queue everything in one transaction, then the app server's sender drains it.
    say(`throughput: queueing ${mailCount} mails`);
    const jobs = new JobQueue<MailJob>(pool, MAIL_QUEUE);
    const addresses = Array.from({ length: 50 }, (_, i) => `bench-${run}-${i}@bench.test`);
    await inTransaction(pool, async (tx) => {
      for (let i = 0; i < mailCount; i++) {
        await jobs.enqueue(tx, `bench:${run}:${i}`, {
          to: addresses[i % addresses.length] as string,
          type: 'password_reset',
          vars: { recipient: { name: `bench ${i}` }, resetUrl: `https://example.test/reset/${i}`, expiresMinutes: 30 },
        });
      }
    });
    // One listing of the Maildir per look, and not too often: listing it per address every few
    // milliseconds took more CPU than the sender it was measuring.
    const tags = addresses.map(maildirTag);
    const delivered = (): number => maildirFiles(config).filter((f) => tags.some((t) => f.file.replace(/:2,[A-Za-z]*$/, '').endsWith(t))).length;
    const start = Date.now();
    app.mail.wakeSender();
    await waitFor(() => delivered() >= mailCount, 'every mail in the Maildir', 10 * 60_000, 100);
    const seconds = (Date.now() - start) / 1000;
    const throughput = { mails: mailCount, seconds: Number(seconds.toFixed(2)), mailsPerSecond: Number((mailCount / seconds).toFixed(1)) };
    say(`throughput: ${throughput.mailsPerSecond} mails/s (${mailCount} in ${throughput.seconds} s)`);

    // 2. Latency: private replies to offline learners, through the whole path.
    const [room] = await makeBenchRooms(app.services, 1, Math.min(replyCount, 50));
    if (!room) throw new Error('no bench room');
    const learnerAddress = new Map<string, string>();
    for (const l of room.learners) {
      const email = `bench-${run}-${l.id.slice(0, 8)}@bench.test`;
      learnerAddress.set(l.id, email);
      await pool.query('UPDATE users SET email = $2, email_verified_at = now() WHERE id = $1', [l.id, email]);
    }
    say(`latency: ${replyCount} private replies at ${rate}/s`);
    const sent: { id: string; to: string; createdAt: number }[] = [];
    for (let i = 0; i < replyCount; i++) {
      const learner = room.learners[i % room.learners.length]!;
      const { message } = await app.services.sendMessage.send(room.id, room.instructor.id, {
        clientMsgId: `bench-${run}-${i}`,
        audience: 'member',
        recipientId: learner.id,
        kind: 'answer',
        body: { text: `reply ${i}` },
      });
      sent.push({ id: message.id, to: learnerAddress.get(learner.id) as string, createdAt: Date.parse(message.createdAt) });
      await sleep(1000 / rate);
    }
    const perAddress = new Map<string, number>();
    for (const s of sent) perAddress.set(s.to, (perAddress.get(s.to) ?? 0) + 1);
    await waitFor(() => [...perAddress].every(([a, n]) => maildirFiles(config, a).length >= n), 'every notification in the Maildir', 5 * 60_000, 100);
    // Each learner's mails arrive in the order they were sent (one notify job per message, in
    // order); the n-th file of an address is its n-th reply.
    const samples: number[] = [];
    for (const [address] of perAddress) {
      const files = maildirFiles(config, address).sort((a, b) => a.deliveredAt.getTime() - b.deliveredAt.getTime());
      const mine = sent.filter((s) => s.to === address);
      mine.forEach((s, i) => samples.push((files[i]?.deliveredAt.getTime() ?? NaN) - s.createdAt));
    }
    const latency = { replies: replyCount, ratePerSecond: rate, commitToMailboxMs: roundSummary(summarize(samples)) };
    say(`latency: commit → mailbox p50 ${latency.commitToMailboxMs.p50} ms, p99 ${latency.commitToMailboxMs.p99} ms`);

    const results: MailBench = { machine: machineFacts(), startedAt, throughput, latency };
    const l = latency.commitToMailboxMs;
    writeBenchResults(
      {
        name: 'mail',
        title: 'roomcast mail benchmark',
        startedAt,
        machine: results.machine,
        rows: [
          ['queue → Maildir, one sender, pooled SMTP to Exim', `${throughput.mailsPerSecond} mails/s (${mailCount} mails in ${throughput.seconds} s)`],
          [`commit → notification in the Maildir (${replyCount} replies at ${rate}/s)`, `p50 ${l.p50} ms, p95 ${l.p95} ms, p99 ${l.p99} ms, max ${l.max} ms`],
        ],
      },
      results,
    );
  } finally {
    await app.close();
  }
}

main().catch((err: unknown) => {
  say(`error: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
