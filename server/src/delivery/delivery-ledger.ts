/**
 * The one owner of this process's publishes: which publish jobs it holds and is waiting on the
 * broker for, which are confirmed but not yet recorded, which are lost. Both paths go through
 * it: the send request (its job was leased to it by `roomcast_send`) and the outbox relay (its
 * jobs leased by its claim).
 *
 * The job's lease is the only thing that keeps another relay away, on this server or any other,
 * so the ledger holds it for as long as the outcome is open:
 * - a confirm is recorded as `complete`, in batches (one UPDATE per few milliseconds instead of
 *   one per message); until the batch is written the lease is still renewed, so no relay pass
 *   between the confirm and its record takes the job for unpublished;
 * - a loss (a nack, a channel that closed or was replaced) is recorded as a failed attempt,
 *   due again almost at once: no confirm is coming, and waiting out the lease would only delay
 *   the message by seconds after a node dies;
 * - a publish that is merely slow keeps its lease, renewed, for up to `maxHoldMs` after it was
 *   sent: under load or a resource alarm confirms come late, and republishing meanwhile would
 *   only add duplicates. After that the lease is left to run out and a relay publishes again;
 *   a confirm that still comes is recorded all the same.
 *
 * Delivery stays at-least-once: a lease that ran out, or a record lost to a crash, means one
 * more publish of the same message id, which clients drop.
 */
import { Buffer } from 'node:buffer';
import type { RoomMessage } from '../../../shared/protocol/messages';
import { routingKeyOf } from '../../../shared/protocol/routing';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { JobFailure, JobQueue } from '../work/job-queue';
import type { RetrySchedule } from '../work/retry-schedule';

/** What a caller of `deliver` hears: the broker's answer, or that none came within the timeout. */
export type DeliveryOutcome = 'confirmed' | 'lost' | 'unconfirmed';
export type DeliveryPath = 'request' | 'relay';

export interface PublishJob {
  id: number;
  /** Attempts started, this one included: the retry schedule's input when it is lost. */
  attempts: number;
}

export interface DeliveryLedgerOptions {
  broker: Pick<BrokerConnection, 'publish'>;
  jobs: Pick<JobQueue, 'complete' | 'renew' | 'retry'>;
  /** When a lost publish is due again. */
  schedule: RetrySchedule;
  /** How long a caller of `deliver` waits for the broker; the ledger itself waits longer. */
  timeoutMs: number;
  /** A publish still unconfirmed this long after it was sent is left to the relay. */
  maxHoldMs: number;
  /**
   * How often held leases are looked at; a lease with less than two of these left is renewed.
   * Well under the shortest lease a job comes with (the send request's).
   */
  renewEveryMs: number;
  metrics: Pick<Metrics, 'messagesPublished' | 'publishFailures'>;
  logger: Logger;
}

/** Outcomes are written this soon, or at once when this many wait. */
const FLUSH_AFTER_MS = 20;
const MAX_BATCH = 500;
/** A renewal holds a lease for this long from now. */
const RENEW_MS = 5000;

interface Held {
  attempts: number;
  sentAt: number;
  /** By this process's clock, when the lease ends at the earliest. */
  leaseEnds: number;
  confirmed: boolean;
}

export class DeliveryLedger {
  private readonly held = new Map<number, Held>();
  private toComplete = new Set<number>();
  private toRetry = new Map<number, JobFailure>();
  private flushTimer: NodeJS.Timeout | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private readonly writes = new Set<Promise<void>>();
  private readonly deliveries = new Set<Promise<DeliveryOutcome>>();

  constructor(private readonly o: DeliveryLedgerOptions) {}

  /**
   * Publishes `message` for its publish job, which the caller holds for `leaseMs` from now, and
   * records the broker's answer on the job whenever it comes. Resolves with the answer, or
   * 'unconfirmed' once `timeoutMs` has passed without one; never rejects.
   */
  deliver(job: PublishJob, message: RoomMessage, path: DeliveryPath, leaseMs: number): Promise<DeliveryOutcome> {
    const sentAt = Date.now();
    const entry: Held = { attempts: job.attempts, sentAt, leaseEnds: sentAt + leaseMs, confirmed: false };
    this.held.set(job.id, entry);
    this.armRenewals();
    const answer = this.o.broker.publish(routingKeyOf(message), Buffer.from(JSON.stringify(message)), {
      // Few properties: each becomes a header of every subscriber's STOMP frame, and the body
      // already carries the seq and time. Persistent, so any durable queue bound to the room
      // keeps it over a restart (quorum queues store every message anyway).
      persistent: true,
      messageId: message.id,
      contentType: 'application/json',
    });
    let timedOut = false;
    const outcome = new Promise<DeliveryOutcome>((resolve) => {
      const timer = setTimeout(() => {
        timedOut = true;
        this.o.metrics.publishFailures.inc({ path });
        resolve('unconfirmed');
      }, this.o.timeoutMs);
      answer.then(
        () => {
          clearTimeout(timer);
          this.confirmed(job.id, entry);
          this.o.metrics.messagesPublished.inc({ path: timedOut ? 'late_confirm' : path });
          resolve('confirmed');
        },
        (err: unknown) => {
          clearTimeout(timer);
          this.lost(job.id, entry, (err as Error).message);
          if (!timedOut) this.o.metrics.publishFailures.inc({ path });
          this.o.logger.warn({ jobId: job.id, messageId: message.id, path, err: (err as Error).message }, 'publish lost; the relay publishes it again');
          resolve('lost');
        },
      );
    });
    const tracked = outcome.finally(() => this.deliveries.delete(tracked));
    this.deliveries.add(tracked);
    return outcome;
  }

  /**
   * Whether this process holds the job's outcome open: its publish awaits the broker, or its
   * confirm is not recorded yet. A relay that claims such a job leaves it be: its lease can run
   * out while this process is stalled (a long GC, CPU contention) before it renews it, and a
   * second publish now would only be a duplicate.
   */
  holds(jobId: number): boolean {
    return this.held.has(jobId);
  }

  /**
   * Resolves once every delivery started so far has been answered or timed out, and every
   * outcome known by then is written; used at shutdown.
   */
  async settled(): Promise<void> {
    await Promise.all([...this.deliveries]);
    await this.flush();
  }

  /** Stops renewing leases: what is still open is the relays' once its leases run out. */
  async close(): Promise<void> {
    await this.settled();
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = null;
    this.held.clear();
  }

  private confirmed(id: number, entry: Held): void {
    entry.confirmed = true;
    // A later publish of the same job (a relay pass after its lease ran out) may hold it now.
    if (!this.held.has(id)) this.held.set(id, entry);
    this.toRetry.delete(id);
    this.toComplete.add(id);
    this.flushSoon();
  }

  private lost(id: number, entry: Held, error: string): void {
    if (this.held.get(id) !== entry) return; // a newer publish of the job holds it
    this.held.delete(id);
    this.toRetry.set(id, { id, attempts: entry.attempts, error });
    this.flushSoon();
  }

  private flushSoon(): void {
    const due = this.toComplete.size + this.toRetry.size >= MAX_BATCH ? 0 : FLUSH_AFTER_MS;
    if (this.flushTimer && due > 0) return;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => void this.flush(), due);
  }

  /** Writes the outcomes known now; resolves once they and every earlier write are done. */
  private async flush(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const complete = [...this.toComplete];
    const retry = [...this.toRetry.values()];
    this.toComplete = new Set();
    this.toRetry = new Map();
    if (complete.length + retry.length > 0) {
      const write = Promise.all([this.o.jobs.complete(complete), this.o.jobs.retry(retry, this.o.schedule)])
        .then(() => undefined)
        .catch((err: unknown) =>
          this.o.logger.warn({ err: (err as Error).message, jobs: complete.length + retry.length }, 'recording publish outcomes failed; the relay publishes them again'),
        )
        .finally(() => {
          // Recorded (or given up on): the lease no longer needs holding.
          for (const id of complete) if (this.held.get(id)?.confirmed) this.held.delete(id);
          this.writes.delete(write);
        });
      this.writes.add(write);
    }
    await Promise.all([...this.writes]);
  }

  /** Renews, every so often, the leases of the jobs still held that are about to run out. */
  private armRenewals(): void {
    if (this.renewTimer) return;
    this.renewTimer = setTimeout(() => {
      this.renewTimer = null;
      this.renew();
      if (this.held.size > 0) this.armRenewals();
    }, this.o.renewEveryMs);
  }

  private renew(): void {
    const now = Date.now();
    const due: number[] = [];
    for (const [id, h] of this.held) {
      if (h.leaseEnds - now > 2 * this.o.renewEveryMs) continue;
      if (!h.confirmed && now - h.sentAt > this.o.maxHoldMs) {
        // Given up: the lease runs out and a relay publishes it again. A confirm that still
        // comes is recorded all the same.
        this.held.delete(id);
        continue;
      }
      h.leaseEnds = now + RENEW_MS;
      due.push(id);
    }
    if (due.length === 0) return;
    const write = this.o.jobs
      .renew(due, RENEW_MS)
      .catch((err: unknown) => this.o.logger.warn({ err: (err as Error).message, jobs: due.length }, 'renewing publish leases failed'))
      .finally(() => this.writes.delete(write));
    this.writes.add(write);
  }
}
