import pg from 'pg';
import type { Config } from '../../../runtime/config';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

// bigint columns (seq) fit in a JS number for any realistic room; parse them as numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));

export function createPool(config: Config, onError: (err: Error) => void): Pool {
  const pool = new pg.Pool({
    connectionString: config.postgres.url,
    max: config.postgres.poolSize,
    connectionTimeoutMillis: 3000,
    // A statement stuck behind a paused database fails the request instead of hanging it.
    statement_timeout: 10_000,
    // The same when the database host is cut off: no answer at all comes back, so the client
    // gives up itself (and the pool drops that connection: pg-pool releases it with the error).
    query_timeout: 15_000,
    // Probes an idle connection after 10 s instead of the kernel's two hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: 'roomcast',
  });
  // An idle client losing its connection emits here; without a listener it would crash the process.
  pool.on('error', onError);
  return pool;
}

/** Runs `fn` in one transaction: COMMIT on success, ROLLBACK on any error. */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // A connection whose query timed out, or that cannot even roll back, may still have a query
    // in flight: it is destroyed rather than handed to the next request.
    const rolledBack = await client.query('ROLLBACK').then(() => true, () => false);
    broken = !rolledBack || /Query read timeout/i.test((err as Error).message);
    throw err;
  } finally {
    client.release(broken ? true : undefined);
  }
}
