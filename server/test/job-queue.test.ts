import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, inTransaction, type Pool } from '../src/db/pool';
import { migrate } from '../src/db/migrate';
import { createLogger } from '../src/logger';
import { JobQueue } from '../src/work/job-queue';
import { fixedSchedule } from '../src/work/retry-schedule';
import { Worker, type JobOutcome } from '../src/work/worker';
import { testConfig } from '../../testkit/test-config';
import { waitFor } from '../../testkit/stomp';

const logger = createLogger({ logLevel: 'silent' }, 'test');
let pool: Pool;
beforeAll(async () => {
  pool = createPool(testConfig(), () => undefined);
  await migrate(pool);
});
afterAll(() => pool.end());

/** A queue of its own per test: nothing else claims from it. */
const freshQueue = (): JobQueue => new JobQueue(pool, `test-${randomBytes(4).toString('hex')}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const row = async (id: number) =>
  (await pool.query<{ state: string; attempts: number; last_error: string | null }>('SELECT state, attempts, last_error FROM jobs WHERE id = $1', [id])).rows[0];

describe('leased work (jobs)', () => {
  it('makes one job per ref, and none when the enqueuing transaction rolls back', async () => {
    const q = freshQueue();
    const a = await q.enqueue(pool, 'same', { n: 1 });
    expect(await q.enqueue(pool, 'same', { n: 2 })).toBe(a);
    await expect(
      inTransaction(pool, async (client) => {
        await q.enqueue(client, 'rolled-back', {});
        throw new Error('the cause failed');
      }),
    ).rejects.toThrow('the cause failed');
    const jobs = await q.claim(10, 60_000);
    expect(jobs.map((j) => [j.id, j.ref, j.payload, j.attempts])).toEqual([[a, 'same', { n: 1 }, 1]]);
  });

  it('never lets two workers hold one job', async () => {
    const q = freshQueue();
    const N = 300;
    for (let i = 0; i < N; i++) await q.enqueue(pool, `job-${i}`, {});
    const handled: number[] = [];
    const holding = new Set<number>();
    let overlaps = 0;
    const worker = (): Worker<Record<string, unknown>> =>
      new Worker({
        queue: q,
        schedule: fixedSchedule([]),
        batch: 7,
        leaseMs: 30_000,
        intervalMs: 1,
        logger,
        handle: async (jobs): Promise<JobOutcome[]> => {
          for (const j of jobs) {
            if (holding.has(j.id)) overlaps++;
            holding.add(j.id);
          }
          await sleep(2);
          for (const j of jobs) {
            holding.delete(j.id);
            handled.push(j.id);
          }
          return jobs.map((j) => ({ id: j.id, outcome: 'done' }));
        },
      });
    const workers = [worker(), worker(), worker()];
    for (const w of workers) w.start();
    await waitFor(async () => (await q.stats()).pending === 0, 'every job done', 30_000);
    await Promise.all(workers.map((w) => w.stop()));
    expect(overlaps).toBe(0);
    expect(handled).toHaveLength(N);
    expect(new Set(handled).size).toBe(N);
  });

  it('gives the job of a worker killed mid-job to another once its lease ends, not before', async () => {
    const q = freshQueue();
    const id = await q.enqueue(pool, 'abandoned', {});
    const LEASE_MS = 1500;
    const child = fork(fileURLToPath(new URL('./job-claimer.ts', import.meta.url)), [q.name, String(LEASE_MS)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const claimed = await new Promise<unknown>((resolve) => child.once('message', (m: { claimed: unknown }) => resolve(m.claimed)));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    expect(claimed).toBe(id);
    // Its lease still holds: nobody else may take the job yet.
    expect(await q.claim(10, 60_000)).toEqual([]);
    let taken: Awaited<ReturnType<JobQueue['claim']>> = [];
    await waitFor(async () => (taken = await q.claim(10, 60_000)).length > 0, 'the lease to run out', 10_000);
    expect(Date.now() - killedAt).toBeGreaterThan(LEASE_MS / 2);
    expect(taken.map((j) => [j.id, j.attempts])).toEqual([[id, 2]]);
    await q.complete([id]);
    expect((await row(id))?.state).toBe('done');
  });

  it('retries a failed job when the schedule says, not sooner, and fails it for good when the schedule ends', async () => {
    const q = freshQueue();
    const id = await q.enqueue(pool, 'flaky', {});
    const schedule = fixedSchedule([800, 800], { jitter: 0 });
    const attempts: number[] = [];
    const w = new Worker({
      queue: q,
      schedule,
      batch: 10,
      leaseMs: 30_000,
      intervalMs: 50,
      logger,
      handle: async (jobs) => {
        attempts.push(Date.now());
        return jobs.map((j) => ({ id: j.id, outcome: 'retry', error: `refused (attempt ${j.attempts})` }));
      },
    });
    w.start();
    await waitFor(async () => (await row(id))?.state === 'failed', 'the job to fail for good', 10_000);
    await sleep(300);
    await w.stop();
    // Three attempts (the first and two retries), each one delay after the one before.
    expect(attempts).toHaveLength(3);
    expect(attempts[1]! - attempts[0]!).toBeGreaterThanOrEqual(750);
    expect(attempts[2]! - attempts[1]!).toBeGreaterThanOrEqual(750);
    expect(await row(id)).toEqual({ state: 'failed', attempts: 3, last_error: 'refused (attempt 3)' });
    expect(await q.stats()).toMatchObject({ pending: 0, failed: 1 });
    expect(await q.claim(10, 60_000)).toEqual([]);
  });

  it('deletes finished jobs once they are old enough, done ones sooner than failed ones, and never a pending one', async () => {
    const q = freshQueue();
    const [done, failed, pending] = [await q.enqueue(pool, 'done', {}), await q.enqueue(pool, 'failed', {}), await q.enqueue(pool, 'pending', {})];
    await q.claim(10, 60_000);
    await q.complete([done]);
    await q.fail([{ id: failed, error: 'no' }]);
    await sleep(50);
    expect(await q.prune({ doneMs: 60_000, failedMs: 60_000 })).toBe(0);
    expect(await q.prune({ doneMs: 10, failedMs: 60_000 })).toBe(1);
    expect(await row(done)).toBeUndefined();
    expect(await q.prune({ doneMs: 10, failedMs: 10 })).toBe(1);
    expect((await row(pending))?.state).toBe('pending');
  });
});
