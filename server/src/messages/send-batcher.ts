/**
 * Group commit for sends. Sends that arrive while earlier ones are being committed wait and go
 * together: one call of `roomcast_send_batch` (migration 015), one transaction, one WAL flush and
 * one round trip for the lot. Nothing waits on a timer: a send that finds a free slot runs at
 * once, alone, so a quiet room pays no latency for batching; under load the batches grow by
 * themselves to whatever queued meanwhile (up to `maxBatch`).
 *
 * A batch that fails as a whole commits nothing. When the database is unreachable or overloaded
 * (a connection, timeout or shutdown error) every send of it fails with that error: running them
 * again at once would only add load to a database in trouble. Any other error (one malformed
 * send) reruns the sends one after another on the batch's own slot, so one bad send fails only
 * itself. Running one again is safe: each is idempotent by its client message id.
 */
import type { Pool, PoolClient } from '../db/pool';
import { UnavailableError, toAppError } from '../errors';

/** One send as `roomcast_send_batch` reads it (JSON field names are the function's). */
export interface BatchedSend {
  room: string;
  sender: string;
  clientMsgId: string;
  hash: string;
  audience: string;
  recipient: string | null;
  kind: string;
  body: unknown;
}

/**
 * Runs `sends` in order in one call of `roomcast_send_batch` (on `db`: the pool, or the caller's
 * transaction); each row's `ord` is its send's 1-based place in `sends`.
 */
export async function sendBatch<Row extends { ord: number }>(db: Pick<Pool | PoolClient, 'query'>, sends: BatchedSend[], leaseMs: number): Promise<Row[]> {
  const { rows } = await db.query<Row>({
    name: 'roomcast-send-batch',
    text: 'SELECT * FROM roomcast_send_batch($1, $2)',
    values: [JSON.stringify(sends), leaseMs],
  });
  return rows;
}

export interface BatcherOptions {
  /** Sends per transaction at most. */
  maxBatch: number;
  /** Batches committing at once (connections the send path holds). */
  maxConcurrent: number;
}

interface Waiting<Row> {
  send: BatchedSend;
  resolve: (row: Row) => void;
  reject: (err: unknown) => void;
}

export class SendBatcher<Row extends { ord: number }> {
  private readonly waiting: Waiting<Row>[] = [];
  private running = 0;

  constructor(
    private readonly pool: Pool,
    private readonly leaseMs: number,
    private readonly o: BatcherOptions = { maxBatch: 100, maxConcurrent: 4 },
  ) {}

  /** Resolves with the send's row from `roomcast_send` (its outcome included) once committed. */
  send(send: BatchedSend): Promise<Row> {
    return new Promise<Row>((resolve, reject) => {
      this.waiting.push({ send, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.o.maxConcurrent && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.o.maxBatch);
      this.running++;
      void this.commit(batch).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async commit(batch: Waiting<Row>[]): Promise<void> {
    let rows: Row[];
    try {
      rows = await sendBatch<Row>(this.pool, batch.map((w) => w.send), this.leaseMs);
    } catch (err) {
      if (batch.length === 1 || toAppError(err) instanceof UnavailableError) {
        for (const w of batch) w.reject(err);
        return;
      }
      for (const w of batch) await this.commit([w]);
      return;
    }
    const byOrd = new Map(rows.map((r) => [r.ord, r]));
    batch.forEach((w, i) => {
      const row = byOrd.get(i + 1);
      if (row) w.resolve(row);
      else w.reject(new Error(`roomcast_send_batch returned no row for send ${i + 1} of ${batch.length}`));
    });
  }
}
