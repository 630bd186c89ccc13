/**
 * Digests: one mail per person, room and window (hourly or daily, in UTC), listing what
 * concerns them since their last mail about the room. The 'digest' queue holds one job per
 * person, room and window end, under a ref made of the three: every event of the window names
 * the same job, so two events in the same second never make two digests. The job runs when its
 * window ends; in one transaction it locks the person's watermark, reads what came after it,
 * queues the mail and moves the watermark. A crash before the commit leaves everything as it
 * was (the job runs again); after it, the mail job exists once (its ref is the digest's), so a
 * digest is neither sent twice nor skipped.
 */
import { inTransaction, type Pool } from '../db/pool';
import type { Logger } from '../logger';
import type { Job, JobQueue } from '../work/job-queue';
import { exponentialBackoff } from '../work/retry-schedule';
import { oneAtATime, Worker, type JobOutcome } from '../work/worker';
import { concerns, isUrgent, mailItem } from './concerns';
import type { MailJob } from './mail-job';
import { roomUrl, unsubscribeUrl, type LinkConfig } from './mail-links';
import type { MailStore } from './mail-store';

export const DIGEST_QUEUE = 'digest';

export interface DigestJob {
  userId: string;
  roomId: string;
  window: 'hourly' | 'daily';
  /** ISO 8601: when the window closes and the digest is due. */
  windowEnd: string;
}

/** Messages one digest reads at most; anything after waits for the next. */
const MAX_SCAN = 1000;
/** Items one digest lists; it says how many more there were. */
const MAX_ITEMS = 100;

/** The end of the window `at` falls in: the next full hour, or the next midnight (UTC). */
export function digestWindowEnd(window: 'hourly' | 'daily', at: Date): Date {
  const length = window === 'hourly' ? 3600_000 : 24 * 3600_000;
  return new Date(Math.floor(at.getTime() / length) * length + length);
}

export interface DigestOptions {
  pool: Pool;
  jobs: JobQueue<DigestJob>;
  mail: JobQueue<MailJob>;
  store: MailStore;
  links: LinkConfig;
  logger: Logger;
  intervalMs: number;
  onMail: () => void;
}

export function createDigests(o: DigestOptions): Worker<DigestJob> {
  const digest = async (job: Job<DigestJob>): Promise<JobOutcome> => {
    const { userId, roomId, window } = job.payload;
    const mailed = await inTransaction(o.pool, async (tx) => {
      const after = await o.store.lockWatermark(tx, userId, roomId);
      const [member] = await o.store.members(tx, roomId, [userId]);
      // Left the room, no usable address, or mail turned off since: nothing to send.
      if (!member?.email || member.mode === 'off') return false;
      const scanned = await o.store.mayConcernAfter(tx, roomId, { seq: after }, MAX_SCAN);
      // Urgent announcements went out on their own, whatever the digest choice.
      const items = scanned.filter((m) => concerns(m, member) && !isUrgent(m));
      const last = scanned.at(-1);
      if (last) await o.store.advanceWatermark(tx, userId, roomId, last.seq);
      if (items.length === 0) return false;
      const roomName = items[0]?.roomName ?? '';
      const unsubscribe = unsubscribeUrl(o.links, userId, roomId);
      await o.mail.enqueue(tx, `digest:${job.ref}`, {
        to: member.email,
        type: 'digest',
        vars: {
          recipient: { name: member.name },
          room: { name: roomName, url: roomUrl(o.links, roomId, member.role) },
          window,
          items: items.slice(0, MAX_ITEMS).map(mailItem),
          count: items.length,
          unsubscribeUrl: unsubscribe,
        },
        unsubscribeUrl: unsubscribe,
      });
      return true;
    });
    if (mailed) o.onMail();
    return { id: job.id, outcome: 'done' };
  };
  return new Worker({
    queue: o.jobs,
    schedule: exponentialBackoff({ firstMs: 5000, maxMs: 10 * 60_000 }),
    batch: 20,
    leaseMs: 60_000,
    intervalMs: o.intervalMs,
    logger: o.logger,
    handle: oneAtATime(digest),
  });
}
