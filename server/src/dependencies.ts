/**
 * The start-up check of the dependencies a process is configured to use. A wrong URL, a host
 * that does not answer or a refused password stops the start with one line naming the setting
 * and the host, instead of a driver's stack trace or a server that runs but fails every request.
 */
import type { Config } from '../../runtime/config';
import type { Pool } from './db/pool';
import type { Redis } from './redis';

/** A dependency named by a setting cannot be reached or refuses roomcast's login. */
export class DependencyError extends Error {
  override name = 'DependencyError';
  readonly code = 'dependency_unreachable';
}

/** Long enough for a data host started at the same moment to come up; short enough to fail a typo soon. */
const DEFAULT_WAIT_MS = 20_000;
const RETRY_MS = 500;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A password refused is no reason to wait: Postgres 28P01/28000, Redis WRONGPASS/NOAUTH. */
function refusedLogin(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === '28P01' || e.code === '28000' || /WRONGPASS|NOAUTH|invalid username-password/i.test(e.message ?? '');
}

async function reach(what: string, setting: string, host: string, port: number, attempt: () => Promise<unknown>, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await attempt();
      return;
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0];
      if (refusedLogin(err)) throw new DependencyError(`${what} at ${host}:${port} refused the login (${reason}); check the user and password in ${setting}`);
      if (Date.now() >= deadline) {
        throw new DependencyError(`cannot reach ${what} at ${host}:${port} (${setting}) after ${waitMs / 1000} s: ${reason}`);
      }
      await sleep(RETRY_MS);
    }
  }
}

/** Waits (a bounded time) until Postgres and Redis answer; throws DependencyError otherwise. */
export async function checkDependencies(config: Config, deps: { pool?: Pool; redis?: Redis }, waitMs = DEFAULT_WAIT_MS): Promise<void> {
  const { pool, redis } = deps;
  const { postgres: pg, redis: rd } = config;
  await Promise.all([
    pool && reach('Postgres', pg.setting, pg.host, pg.port, () => pool.query('SELECT 1'), waitMs),
    redis && reach('Redis', rd.setting, rd.host, rd.port, () => redis.ping(), waitMs),
  ]);
}
