/**
 * The outbox relay: publishes committed messages whose publish was never confirmed (the broker
 * was down, the publish was lost, or the server died between commit and publish). It is a
 * worker on the 'publish' job queue: every message gets a publish job in the transaction that
 * commits it (`roomcast_send`), leased to the send request for `outboxRelayAfterMs`; a job
 * still pending after that, or released by a loss, is claimed here. The ledger then owns it
 * like any send request's publish.
 */
import type { RoomMessage } from '../../../shared/protocol/messages';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Logger } from '../logger';
import type { JobQueue } from '../work/job-queue';
import { exponentialBackoff } from '../work/retry-schedule';
import { Worker, type JobOutcome } from '../work/worker';
import type { DeliveryLedger } from './delivery-ledger';

export const PUBLISH_QUEUE = 'publish';

/**
 * A lost publish is due again after this. The first retry comes at the next pass; repeated
 * losses (a node that keeps refusing) back off to seconds. Publishes never fail for good: a
 * committed message is always delivered.
 */
export const PUBLISH_RETRY = exponentialBackoff({ firstMs: 50, maxMs: 10_000 });

const BATCH = 200;
/** The relay's hold on what it claimed: enough for a confirm under load; the ledger renews it while it waits. */
const LEASE_MS = 15_000;

export interface OutboxRelayOptions {
  jobs: JobQueue;
  ledger: DeliveryLedger;
  broker: Pick<BrokerConnection, 'status' | 'blocked'>;
  /** The messages with these ids (those that exist). */
  loadMessages: (ids: string[]) => Promise<RoomMessage[]>;
  intervalMs: number;
  logger: Logger;
}

export function createOutboxRelay(o: OutboxRelayOptions): Worker<Record<string, unknown>> {
  return new Worker({
    queue: o.jobs,
    schedule: PUBLISH_RETRY,
    batch: BATCH,
    leaseMs: LEASE_MS,
    intervalMs: o.intervalMs,
    logger: o.logger,
    // Claiming jobs while the broker is down would only hide them from the other relays; while
    // it blocks our publishes (a resource alarm), copies would only pile up behind the first ones.
    ready: () => o.broker.status === 'connected' && o.broker.blocked === null,
    handle: async (jobs): Promise<JobOutcome[]> => {
      const messages = new Map((await o.loadMessages(jobs.map((j) => j.ref))).map((m) => [m.id, m]));
      // In seq order per room, as subscribers would have received them live.
      const order = (ref: string): [string, number] => [messages.get(ref)?.roomId ?? '', messages.get(ref)?.seq ?? 0];
      const sorted = [...jobs].sort((a, b) => {
        const [ra, sa] = order(a.ref);
        const [rb, sb] = order(b.ref);
        return ra === rb ? sa - sb : ra < rb ? -1 : 1;
      });
      const outcomes = await Promise.all(
        sorted.map(async (job): Promise<JobOutcome & { delivered?: string }> => {
          const message = messages.get(job.ref);
          if (!message) return { id: job.id, outcome: 'failed', error: `message ${job.ref} does not exist` };
          if (o.ledger.holds(job.id)) return { id: job.id, outcome: 'held' };
          return { id: job.id, outcome: 'held', delivered: await o.ledger.deliver(job, message, 'relay', LEASE_MS) };
        }),
      );
      const count = (what: string): number => outcomes.filter((x) => x.delivered === what).length;
      o.logger.info({ confirmed: count('confirmed'), lost: count('lost'), unconfirmed: count('unconfirmed') }, 'outbox relay pass');
      return outcomes.map(({ delivered: _delivered, ...outcome }) => outcome);
    },
  });
}
