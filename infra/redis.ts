/**
 * roomcast's own redis-server on loopback, with its configuration generated from `Config`
 * and persistence (AOF, fsync every second) in `.data/redis`.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Config } from '../runtime/config';
import type { Logger } from './logger';
import { dataPaths, ensureDir } from './paths';
import { isProcessAlive, logTail, readPidFile, runChecked, terminate, waitUntil } from './processes';
import { assertPortFree, isPortOpen, type ServiceStatus } from './probes';

/** Redis could not be started or reached. */
export class RedisError extends Error {
  override name = 'RedisError';
  readonly code = 'redis_failed';
}

const PROGRAM = 'redis-server';

function redisPaths(config: Config) {
  const { redis: dir, run, log } = dataPaths(config);
  return {
    dir,
    confFile: path.join(dir, 'redis.conf'),
    pidFile: path.join(run, 'redis.pid'),
    logFile: path.join(log, 'redis.log'),
  };
}

/** Double-quoted, so paths with spaces survive redis' config parser. */
const q = (value: string): string => JSON.stringify(value);

function writeConfig(config: Config): string {
  const p = redisPaths(config);
  const lines = [
    '# Written by infra/redis.ts before each start; edit that file, not this one.',
    `bind ${config.redis.host}`,
    `port ${config.redis.port}`,
    'protected-mode yes',
    'daemonize yes',
    `pidfile ${q(p.pidFile)}`,
    `logfile ${q(p.logFile)}`,
    `dir ${q(p.dir)}`,
    'appendonly yes',
    'appendfsync everysec',
    // ROOMCAST_REDIS_URL's password: required when Redis listens on another address than loopback.
    ...(config.redis.password === null ? [] : [`requirepass ${q(config.redis.password)}`]),
  ];
  // 0600 from its first byte, in a new file renamed over the old: it may hold the password.
  const tmp = `${p.confFile}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, `${lines.join('\n')}\n`, { mode: 0o600 });
  renameSync(tmp, p.confFile);
  return p.confFile;
}

/** Whether our server answers PING; never retries, so a down server fails fast. */
async function pings(config: Config): Promise<boolean> {
  const client = new Redis({
    host: config.redis.host,
    port: config.redis.port,
    password: config.redis.password ?? undefined,
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {}); // reported through the rejected connect/ping instead
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

function runningPid(config: Config): number | null {
  const pid = readPidFile(redisPaths(config).pidFile);
  return pid !== null && isProcessAlive(pid, PROGRAM) ? pid : null;
}

/** Starts redis unless our instance already answers. */
export async function ensureRedis(config: Config, log: Logger): Promise<void> {
  const { host, port } = config.redis;
  const p = redisPaths(config);
  const pid = runningPid(config);
  if (pid !== null) {
    // Ours, possibly still loading its append-only file: give it time.
    await waitUntil(() => pings(config), {
      timeoutMs: 60_000,
      intervalMs: 500,
      onTimeout: () =>
        new RedisError(
          `our redis (pid ${pid}) does not answer PING on port ${port}; see ${p.logFile} ` +
            '(after changing ROOMCAST_REDIS_PORT, run `npm run services -- down` first)',
        ),
    });
    log.info(`redis: reusing the running server on port ${port}`);
    return;
  }
  await assertPortFree(host, port, 'redis', 'ROOMCAST_REDIS_PORT');
  ensureDir(p.dir);
  ensureDir(path.dirname(p.pidFile));
  ensureDir(path.dirname(p.logFile));
  log.info(`redis: starting on ${host}:${port}`);
  // With `daemonize yes` the command returns once the server has forked.
  await runChecked(PROGRAM, [writeConfig(config)], { timeoutMs: 30_000 });
  await waitUntil(() => pings(config), {
    timeoutMs: 30_000,
    onTimeout: () => new RedisError(`redis did not answer PING on port ${port}; see ${p.logFile}:\n${logTail(p.logFile)}`),
  });
}

/** SIGTERM makes redis flush the AOF before exiting. */
export async function stopRedis(config: Config, log: Logger): Promise<void> {
  const pid = runningPid(config);
  if (pid === null) return;
  log.info(`redis: stopping pid ${pid}`);
  await terminate(pid, PROGRAM, { graceMs: 30_000 });
}

export async function redisStatus(config: Config): Promise<ServiceStatus> {
  const { host, port } = config.redis;
  const pid = runningPid(config);
  return { name: 'redis', up: pid !== null && (await isPortOpen(host, port)), endpoint: `${host}:${port}`, pid };
}
