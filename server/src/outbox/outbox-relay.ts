/**
 * Publishes committed messages whose publish was never confirmed: the broker was down, the
 * publish timed out, or the server died between commit and publish.
 *
 * Rows are claimed with FOR UPDATE SKIP LOCKED and a lease (`claimed_until`), so several app
 * servers share the backlog without publishing the same row at the same time. Delivery stays
 * at-least-once: a row published but not yet marked can go out twice, always with the same
 * message id, and clients drop the copy. Rows whose publish this process is still waiting on (from
 * the request path or an earlier pass) are left alone for up to a lease: under load confirms
 * come late, and republishing then would only add duplicates to the load. So are rows whose
 * confirm has arrived but is not written yet (marks are batched). Rows whose publish
 * this process saw fail for sure (their channel closed with a broker node, a nack) are taken at
 * the next pass instead of after `afterMs`: nothing is coming for them, and waiting would only
 * delay those messages by seconds after a node dies.
 */
import type { BrokerConnection } from '../broker/broker-connection';
import type { Publisher } from '../broker/publisher';
import type { PublishedMarks } from './published-marks';
import type { Pool } from '../db/pool';
import type { Logger } from '../logger';
import { MESSAGE_COLUMNS, toMessage, type MessageRow } from '../messages/message-store';
import type { Metrics } from '../metrics';

const BATCH = 200;
const LEASE_SECONDS = 15;
/** Published rows are kept this long for inspection, then deleted. */
const KEEP_PUBLISHED = '1 hour';
const PRUNE_EVERY_MS = 60_000;

export interface OutboxRelayOptions {
  pool: Pool;
  broker: BrokerConnection;
  publisher: Publisher;
  /** Confirms not yet written to the outbox: those rows are published already. */
  marks: PublishedMarks;
  metrics: Metrics;
  logger: Logger;
  /** A row is the relay's once it is this old and still unpublished. */
  afterMs: number;
  intervalMs: number;
}

export class OutboxRelay {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private lastPrune = 0;

  constructor(private readonly o: OutboxRelayOptions) {}

  start(): void {
    const tick = (): void => {
      this.running = this.runOnce()
        .then(() => undefined)
        .catch((err: unknown) => this.o.logger.warn({ err: (err as Error).message }, 'outbox relay pass failed'))
        .finally(() => {
          this.running = null;
          if (this.timer) this.timer = setTimeout(tick, this.o.intervalMs);
        });
    };
    this.timer = setTimeout(tick, this.o.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass: claim a batch, publish it, mark what was confirmed. Returns how many it published. */
  async runOnce(): Promise<number> {
    // Claiming rows while the broker is down would only hide them from the other relays; while
    // it blocks our publishes (a resource alarm), copies would only pile up behind the first ones.
    if (this.o.broker.status !== 'connected' || this.o.broker.blocked) return 0;
    const { rows } = await this.o.pool.query<MessageRow & { outbox_id: string; routing_key: string }>(
      `WITH claimed AS (
         UPDATE outbox SET claimed_until = now() + make_interval(secs => $2), attempts = attempts + 1
         WHERE id IN (
           SELECT id FROM outbox
           WHERE published_at IS NULL
             AND (created_at < now() - make_interval(secs => $1) OR message_id = ANY($5::uuid[]))
             AND (claimed_until IS NULL OR claimed_until < now())
             AND message_id <> ALL($4::uuid[])
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING id, message_id, routing_key)
       SELECT c.id AS outbox_id, c.routing_key, ${MESSAGE_COLUMNS}
       FROM claimed c JOIN messages m ON m.id = c.message_id
       ORDER BY m.room_id, m.seq`,
      [
        this.o.afterMs / 1000,
        LEASE_SECONDS,
        BATCH,
        [...this.o.publisher.awaitingConfirm(LEASE_SECONDS * 1000), ...this.o.marks.unwritten()],
        this.o.publisher.takeLost(LEASE_SECONDS * 1000, BATCH),
      ],
    );
    let published = 0;
    if (rows.length > 0) published = await this.publishClaimed(rows);
    await this.pruneNow();
    return published;
  }

  private async publishClaimed(rows: (MessageRow & { outbox_id: string; routing_key: string })[]): Promise<number> {
    const results = await Promise.allSettled(rows.map((r) => this.o.publisher.publish(r.routing_key, toMessage(r))));
    const done = rows.filter((_r, i) => results[i]?.status === 'fulfilled').map((r) => r.outbox_id);
    const failed = rows.filter((_r, i) => results[i]?.status !== 'fulfilled').map((r) => r.outbox_id);
    if (done.length > 0) {
      await this.o.pool.query('UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])', [done]);
      this.o.metrics.messagesPublished.inc({ path: 'relay' }, done.length);
    }
    if (failed.length > 0) {
      // Release the lease so the next pass (here or on another server) retries at once; a
      // publish that only timed out is still awaited here, and this server's passes skip it.
      await this.o.pool.query('UPDATE outbox SET claimed_until = NULL WHERE id = ANY($1::bigint[])', [failed]);
      this.o.metrics.publishFailures.inc({ path: 'relay' }, failed.length);
    }
    this.o.logger.info({ published: done.length, failed: failed.length }, 'outbox relay pass');
    return done.length;
  }

  private async pruneNow(): Promise<void> {
    if (Date.now() - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = Date.now();
    await this.o.pool.query(`DELETE FROM outbox WHERE published_at < now() - interval '${KEEP_PUBLISHED}'`);
  }
}

/** Messages committed but not yet confirmed by the broker. */
export async function outboxBacklog(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL');
  return rows[0]?.n ?? 0;
}
