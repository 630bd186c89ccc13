/**
 * The HTTP auth backend RabbitMQ asks about browser users: a Node process running
 * `server/src/broker-auth/main.ts` under tsx. It is restarted whenever the sources under
 * `server/src` or `shared/` change, so tests never talk to a stale copy of the code.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { entryOf, repoRoot, type Config } from '../runtime/config';
import type { Logger } from './logger';
import { isHealthy, NodeServiceError, runningPid, startNodeService, stopNodeService, withStartLock, type NodeService } from './node-process';
import { dataPaths } from './paths';
import { isPortOpen, type ServiceStatus } from './probes';

export const BROKER_AUTH_ENTRY = entryOf('server/src/broker-auth/main.ts');
const SOURCE_DIRS = [path.join(repoRoot, 'server', 'src'), path.join(repoRoot, 'shared')];

export interface BrokerAuthOptions {
  /** Another entry point (a stub, in infra's own checks); defaults to BROKER_AUTH_ENTRY. */
  entry?: string;
}

function service(config: Config, entry = BROKER_AUTH_ENTRY): NodeService & { hashFile: string } {
  const { run, log } = dataPaths(config);
  return {
    name: 'broker-auth',
    entry,
    pidFile: path.join(run, 'broker-auth.pid'),
    hashFile: path.join(run, 'broker-auth.hash'),
    logFile: path.join(log, 'broker-auth.log'),
    healthUrl: `http://${config.brokerAuth.host}:${config.brokerAuth.port}/healthz`,
  };
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

/** Fingerprint of the code the service runs: every file's path and content, in a fixed order. */
function sourceHash(entry: string): string {
  const files = [...new Set([...SOURCE_DIRS.flatMap(listFiles), entry])].sort();
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${path.relative(repoRoot, file)}\0`).update(readFileSync(file)).update('\0');
  return hash.digest('hex');
}

/** Starts the service unless a healthy copy built from the current sources already runs. */
export async function ensureBrokerAuth(config: Config, log: Logger, options: BrokerAuthOptions = {}): Promise<void> {
  const s = service(config, options.entry);
  await withStartLock(s, () => startUnlessRunning(config, s, log));
}

async function startUnlessRunning(config: Config, s: ReturnType<typeof service>, log: Logger): Promise<void> {
  const { port, host } = config.brokerAuth;
  if (!existsSync(s.entry)) throw new NodeServiceError(`broker-auth entry ${s.entry} is missing`);
  const hash = sourceHash(s.entry);
  const pid = runningPid(s);
  if (pid !== null) {
    const current = existsSync(s.hashFile) && readFileSync(s.hashFile, 'utf8').trim() === hash;
    if (current && (await isHealthy(s))) {
      log.info(`broker-auth: reusing pid ${pid} on port ${port}`);
      return;
    }
    await stopNodeService(s, log, current ? 'not healthy' : 'sources changed');
  }
  if (await isPortOpen(host, port)) {
    throw new NodeServiceError(`port ${host}:${port} is taken by a process we did not start; stop it or set ROOMCAST_BROKER_AUTH_PORT`);
  }
  log.info(`broker-auth: starting on ${host}:${port}`);
  writeFileSync(s.hashFile, `${hash}\n`);
  await startNodeService(s, log);
}

export async function stopBrokerAuth(config: Config, log: Logger): Promise<void> {
  const s = service(config);
  await stopNodeService(s, log, 'down');
  rmSync(s.hashFile, { force: true });
}

export async function brokerAuthStatus(config: Config): Promise<ServiceStatus> {
  const s = service(config);
  const pid = runningPid(s);
  return { name: 'broker-auth', up: pid !== null && (await isHealthy(s)), endpoint: `${config.brokerAuth.host}:${config.brokerAuth.port}`, pid };
}
