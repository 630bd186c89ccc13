/**
 * Reminders: a learner who has not opened a room for `reminderAfterMs` gets one mail of what
 * they missed there, and no other until they have opened it again.
 *
 * Every app server queues one sweep per interval under a ref naming the interval (the 'reminders'
 * queue): however many servers run, each interval has one sweep job, and its lease lets one
 * server at a time work it. A sweep marks each learner reminded in the transaction that queues
 * their mail, under a ref naming their absence, so a sweep that runs twice mails nobody twice.
 */
import { inTransaction, type Pool } from '../db/pool';
import type { Logger } from '../logger';
import type { JobQueue } from '../work/job-queue';
import { exponentialBackoff } from '../work/retry-schedule';
import { oneAtATime, Worker } from '../work/worker';
import { concerns, mailItem } from './concerns';
import type { MailJob } from './mail-job';
import { roomUrl, unsubscribeUrl, type LinkConfig } from './mail-links';
import type { MailStore } from './mail-store';

export const REMINDERS_QUEUE = 'reminders';

/** Learners one sweep transaction handles; a sweep repeats until none is due. */
const PER_ROUND = 100;
const MAX_ITEMS = 10;

export interface RemindersOptions {
  pool: Pool;
  jobs: JobQueue;
  mail: JobQueue<MailJob>;
  store: MailStore;
  links: LinkConfig;
  logger: Logger;
  awayMs: number;
  intervalMs: number;
  onMail: () => void;
}

export class Reminders {
  readonly worker: Worker<Record<string, unknown>>;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: RemindersOptions) {
    this.worker = new Worker({
      queue: o.jobs,
      schedule: exponentialBackoff({ firstMs: 10_000, maxMs: o.intervalMs }),
      batch: 1,
      leaseMs: 5 * 60_000,
      intervalMs: Math.min(o.intervalMs, 5000),
      logger: o.logger,
      handle: oneAtATime(async (job) => {
        let mailed = 0;
        for (let round = await this.round(); round.due > 0; round = await this.round()) mailed += round.mailed;
        if (mailed > 0) o.logger.info({ mailed }, 'reminders sent');
        return { id: job.id, outcome: 'done' };
      }),
    });
  }

  /** Queues this interval's sweep now and at every interval from now on. */
  start(): void {
    const schedule = (): void => {
      const slot = Math.floor(Date.now() / this.o.intervalMs);
      this.o.jobs.enqueue(this.o.pool, `sweep:${slot}`, {}).then(
        () => this.worker.wake(),
        (err: unknown) => this.o.logger.warn({ err: (err as Error).message }, 'could not queue the reminder sweep'),
      );
    };
    schedule();
    this.timer = setInterval(schedule, this.o.intervalMs);
    this.worker.start();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.worker.stop();
  }

  /** One transaction: up to PER_ROUND due learners reminded. */
  private async round(): Promise<{ due: number; mailed: number }> {
    const result = await inTransaction(this.o.pool, async (tx) => {
      const due = await this.o.store.dueReminders(tx, this.o.awayMs, PER_ROUND);
      let mailed = 0;
      for (const { userId, roomId, since } of due) {
        await this.o.store.reminded(tx, userId, roomId, since);
        const [member] = await this.o.store.members(tx, roomId, [userId]);
        if (!member?.email) continue;
        const missed = await this.o.store.visibleCountSince(tx, roomId, member, since);
        if (missed === 0) continue;
        const items = (await this.o.store.mayConcernAfter(tx, roomId, { seq: 0, time: since }, 200)).filter((m) => concerns(m, member));
        const roomName = (await this.o.store.roomName(roomId, tx)) ?? '';
        const unsubscribe = unsubscribeUrl(this.o.links, userId, roomId);
        await this.o.mail.enqueue(tx, `reminder:${userId}:${roomId}:${since.toISOString()}`, {
          to: member.email,
          type: 'reminder',
          vars: {
            recipient: { name: member.name },
            room: { name: roomName, url: roomUrl(this.o.links, roomId, member.role) },
            missed,
            items: items.slice(0, MAX_ITEMS).map(mailItem),
            unsubscribeUrl: unsubscribe,
          },
          unsubscribeUrl: unsubscribe,
        });
        mailed++;
      }
      return { due: due.length, mailed };
    });
    if (result.mailed > 0) this.o.onMail();
    return result;
  }
}
