/**
 * Versioned migrations: `migrations/NNN_name.sql`, applied in order, each in its own transaction,
 * recorded in `schema_migrations`. An advisory lock lets several servers start at once.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from '../../../runtime/config';
import type { Pool } from './pool';

// From the checkout's root, not from this module: the compiled bundle lives elsewhere (dist/).
const MIGRATIONS_DIR = path.join(repoRoot, 'server', 'src', 'db', 'migrations');
const LOCK_ID = 7_310_001;
/**
 * The pool's timeouts are for requests; waiting for another server's migrations and running one
 * may take longer. Client side: setTimeout's most (pg reads a query's own `query_timeout`,
 * though its QueryConfig type leaves it out); server side: statement_timeout 0 on this
 * connection while it migrates.
 */
const NO_CLIENT_TIMEOUT = { query_timeout: 2 ** 31 - 1 };

/** Applies pending migrations; returns the names it applied. */
export async function migrate(pool: Pool): Promise<string[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f)).sort();
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('SET statement_timeout = 0');
    await client.query({ text: 'SELECT pg_advisory_lock($1)', values: [LOCK_ID], ...NO_CLIENT_TIMEOUT });
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set((await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name));
    for (const file of files) {
      if (done.has(file)) continue;
      const sql = await readFile(path.join(MIGRATIONS_DIR, file), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query({ text: sql, ...NO_CLIENT_TIMEOUT });
        await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(file);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_ID]).catch(() => undefined);
    await client.query('RESET statement_timeout').catch(() => undefined);
    client.release();
  }
  return applied;
}
