import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../src/db/pool';
import { migrate } from '../src/db/migrate';
import { createLogger } from '../src/logger';
import { MAIL_QUEUE, messageIdFor, type MailJob } from '../src/mail/mail-job';
import { MAIL_BATCH } from '../src/mail/mail-sender';
import { mailSender } from './mail-sender-fixture';
import { JobQueue } from '../src/work/job-queue';
import { eximQueueCount, readMailbox } from '../../testkit/mailbox';
import { waitFor } from '../../testkit/stomp';
import { testConfig } from '../../testkit/test-config';

const config = testConfig();
let pool: Pool;
beforeAll(async () => {
  pool = createPool(config, () => undefined);
  await migrate(pool);
});
afterAll(() => pool.end());

describe('mail worker crash', () => {
  it('delivers every mail after a worker is killed mid-batch, a copy only for what was in flight, recognisable by Message-ID', async () => {
    const run = randomBytes(4).toString('hex');
    const to = `crash-${run}@example.test`;
    const jobs = new JobQueue<MailJob>(pool, MAIL_QUEUE);
    const N = 120;
    const refs: string[] = [];
    for (let i = 0; i < N; i++) {
      const ref = `crash-test:${run}:${i}`;
      refs.push(ref);
      await jobs.enqueue(pool, ref, { to, type: 'password_reset', vars: { recipient: { name: `mail ${i}` }, resetUrl: `https://example.test/r/${i}`, expiresMinutes: 30 } });
    }

    const child = fork(fileURLToPath(new URL('./mail-worker-process.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ROOMCAST_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise((resolve) => child.once('message', resolve));
    // Killed while it sends: some mails are out, some in flight, the rest still queued.
    await waitFor(() => readMailbox(config, to).length >= 30, 'the first mails from the doomed worker', 30_000);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const atKill = readMailbox(config, to).length;
    expect(atKill).toBeLessThan(N);

    // Its leases run out (5 min): a restarted worker would wait them out; make them due now, as time would.
    await pool.query(`UPDATE jobs SET lease_until = now() WHERE queue = $1 AND ref LIKE $2 AND state = 'pending'`, [MAIL_QUEUE, `crash-test:${run}:%`]);
    const sender = await mailSender(config, pool, createLogger({ logLevel: 'silent' }, 'test'));
    sender.worker.start();
    try {
      await waitFor(async () => {
        const { rows } = await pool.query(`SELECT count(*)::int AS n FROM jobs WHERE queue = $1 AND ref LIKE $2 AND state = 'done'`, [MAIL_QUEUE, `crash-test:${run}:%`]);
        return rows[0].n === N;
      }, 'every mail job done', 60_000);
    } finally {
      await sender.close();
    }
    // A job is done once Exim has accepted its mail; Exim delivers it into the Maildir a moment later.
    await waitFor(async () => (await eximQueueCount(config)) === 0, 'Exim to deliver what it accepted', 20_000);
    const ids = await Promise.all(readMailbox(config, to).map(async (m) => (await simpleParser(m.raw)).messageId));
    const copies = new Map<string, number>();
    for (const id of ids) copies.set(id ?? '', (copies.get(id ?? '') ?? 0) + 1);
    for (const ref of refs) expect(copies.get(messageIdFor(ref, config.mail.domain)), ref).toBeGreaterThanOrEqual(1);
    const duplicates = ids.length - N;
    // Only what the killed worker had in flight (one batch) can go out twice.
    expect(duplicates).toBeLessThanOrEqual(MAIL_BATCH);
    console.log(`mail crash: ${atKill} delivered before the kill, ${duplicates} sent twice (bound ${MAIL_BATCH})`);
  });
});
