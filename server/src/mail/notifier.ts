/**
 * Turns a message into mail for the people it concerns who are not online (the 'notify' queue:
 * one job per message that may concern someone, made by a trigger in the message's own
 * transaction). Per person and room, by their choice: a mail now, a place in the next hourly or
 * daily digest, or nothing. Urgent announcements go now whatever the digest choice.
 *
 * Each job's mails are queued in one transaction, each under a ref made of the message and the
 * person, so a job that runs twice (its worker died before recording it) queues nothing twice.
 */
import type { Pool } from '../db/pool';
import { inTransaction } from '../db/pool';
import type { InboundAddresses } from './inbound-addresses';
import { replyTarget } from './reply-target';
import type { Logger } from '../logger';
import type { PresenceStore } from '../presence/presence-store';
import type { Job, JobQueue } from '../work/job-queue';
import { exponentialBackoff } from '../work/retry-schedule';
import { oneAtATime, Worker, type JobOutcome } from '../work/worker';
import { concerns, isUrgent, mailItem } from './concerns';
import { digestWindowEnd, type DigestJob } from './digests';
import type { MailJob } from './mail-job';
import { roomUrl, unsubscribeUrl, type LinkConfig } from './mail-links';
import type { MailStore } from './mail-store';

export const NOTIFY_QUEUE = 'notify';

export interface NotifierOptions {
  pool: Pool;
  jobs: JobQueue;
  mail: JobQueue<MailJob>;
  digests: JobQueue<DigestJob>;
  store: MailStore;
  presence: Pick<PresenceStore, 'online'>;
  links: LinkConfig;
  /** Issues the reply and command addresses a notification carries. */
  addresses: Pick<InboundAddresses, 'replyAddress' | 'commandAddress'>;
  logger: Logger;
  intervalMs: number;
  /** Told when mail was queued, so the sender starts at once. */
  onMail: () => void;
}

export function createNotifier(o: NotifierOptions): Worker<Record<string, unknown>> {
  const notify = async (job: Job): Promise<JobOutcome> => {
    const message = await o.store.message(job.ref);
    if (!message) return { id: job.id, outcome: 'failed', error: `message ${job.ref} does not exist` };
    const online = new Set(await o.presence.online(message.roomId));
    let mailed = 0;
    await inTransaction(o.pool, async (tx) => {
      for (const member of await o.store.members(tx, message.roomId)) {
        if (!member.email || online.has(member.id) || member.mode === 'off' || !concerns(message, member)) continue;
        const vars = { recipient: { name: member.name }, room: { name: message.roomName, url: roomUrl(o.links, message.roomId, member.role) } };
        const unsubscribe = unsubscribeUrl(o.links, member.id, message.roomId);
        if (member.mode === 'immediate' || isUrgent(message)) {
          // A reply to the mail posts into the thread it is about (reply-target.ts), and the mail says who will see it.
          const target = replyTarget(message, member);
          const replyTo = await o.addresses.replyAddress(tx, member.id, message.roomId, target);
          const commandAddress = await o.addresses.commandAddress(tx, member.id, message.roomId);
          const replyAudience = target.audience === 'everyone' ? 'everyone' : 'private';
          await o.mail.enqueue(tx, `notify:${message.id}:${member.id}`, {
            to: member.email,
            type: 'notification',
            vars: { ...vars, message: mailItem(message), unsubscribeUrl: unsubscribe, commandAddress, replyAudience },
            unsubscribeUrl: unsubscribe,
            replyTo,
          });
          // For one who takes every mail at once, all before this is dealt with. One who takes
          // digests keeps the watermark where the last digest left it; the digest skips urgent items.
          if (member.mode === 'immediate') await o.store.advanceWatermark(tx, member.id, message.roomId, message.seq);
          mailed++;
        } else {
          // Every event of the window names the same digest job: the first makes it, the rest find it.
          const window = member.mode;
          const end = digestWindowEnd(window, new Date());
          await o.digests.enqueue(
            tx,
            `${member.id}:${message.roomId}:${end.toISOString()}`,
            { userId: member.id, roomId: message.roomId, window, windowEnd: end.toISOString() },
            { delayMs: Math.max(0, end.getTime() - Date.now()) },
          );
        }
      }
    });
    if (mailed > 0) o.onMail();
    return { id: job.id, outcome: 'done' };
  };
  return new Worker({
    queue: o.jobs,
    schedule: exponentialBackoff({ firstMs: 1000, maxMs: 60_000 }),
    batch: 20,
    leaseMs: 60_000,
    intervalMs: o.intervalMs,
    logger: o.logger,
    handle: oneAtATime(notify),
  });
}
