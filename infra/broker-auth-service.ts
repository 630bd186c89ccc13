/**
 * The HTTP auth backend RabbitMQ asks about browser users: a Node process running
 * `server/src/broker-auth/main.ts` under tsx. It is restarted whenever the sources under
 * `server/src` or `shared/` change, so tests never talk to a stale copy of the code.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, type Config } from '../shared/config';
import type { Logger } from './logger';
import { dataPaths, ensureDir } from './paths';
import { isProcessAlive, logTail, readPidFile, terminate, waitUntil } from './processes';
import { httpStatus, isPortOpen, type ServiceStatus } from './probes';

/** The service could not be started or did not become healthy. */
export class BrokerAuthError extends Error {
  override name = 'BrokerAuthError';
  readonly code = 'broker_auth_failed';
}

export const BROKER_AUTH_ENTRY = path.join(repoRoot, 'server', 'src', 'broker-auth', 'main.ts');
const SOURCE_DIRS = [path.join(repoRoot, 'server', 'src'), path.join(repoRoot, 'shared')];

export interface BrokerAuthOptions {
  /** Another entry point (a stub, in infra's own checks); defaults to BROKER_AUTH_ENTRY. */
  entry?: string;
}

function serviceFiles(config: Config) {
  const { run, log } = dataPaths(config);
  return {
    pidFile: path.join(run, 'broker-auth.pid'),
    hashFile: path.join(run, 'broker-auth.hash'),
    logFile: path.join(log, 'broker-auth.log'),
  };
}

const healthUrl = (config: Config): string => `http://${config.brokerAuth.host}:${config.brokerAuth.port}/healthz`;
const isHealthy = async (config: Config): Promise<boolean> => (await httpStatus(healthUrl(config))) === 200;

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

/**
 * The pid file holds the pid and, on its second line, the entry path: the process's command
 * line must contain it, which tells our service from any process that reused the pid.
 */
function runningService(config: Config): { pid: number; entry: string } | null {
  const { pidFile } = serviceFiles(config);
  const pid = readPidFile(pidFile);
  const entry = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').split('\n')[1] : undefined;
  return pid !== null && entry && isProcessAlive(pid, entry) ? { pid, entry } : null;
}

async function stopService(config: Config, log: Logger, why: string): Promise<void> {
  const running = runningService(config);
  if (running) {
    log.info(`broker-auth: stopping pid ${running.pid} (${why})`);
    await terminate(running.pid, running.entry, { graceMs: 10_000 });
  }
  const { pidFile, hashFile } = serviceFiles(config);
  rmSync(pidFile, { force: true });
  rmSync(hashFile, { force: true });
}

function spawnService(config: Config, entry: string) {
  const { pidFile, logFile } = serviceFiles(config);
  ensureDir(path.dirname(pidFile));
  ensureDir(path.dirname(logFile));
  const out = openSync(logFile, 'a');
  try {
    writeSync(out, `--- ${new Date().toISOString()} starting ${path.relative(repoRoot, entry)}\n`);
    // cwd = repo root so `--import tsx` resolves from the project's node_modules.
    const child = spawn(process.execPath, ['--import', 'tsx', entry], {
      cwd: repoRoot,
      env: process.env,
      detached: true,
      stdio: ['ignore', out, out],
    });
    child.unref();
    if (child.pid === undefined) throw new BrokerAuthError(`could not spawn ${process.execPath} for ${entry}`);
    writeFileSync(pidFile, `${child.pid}\n${entry}\n`);
    return child;
  } finally {
    closeSync(out);
  }
}

/** Starts the service unless a healthy copy built from the current sources already runs. */
export async function ensureBrokerAuth(config: Config, log: Logger, options: BrokerAuthOptions = {}): Promise<void> {
  const entry = options.entry ?? BROKER_AUTH_ENTRY;
  const { port, host } = config.brokerAuth;
  const { hashFile, logFile } = serviceFiles(config);
  if (!existsSync(entry)) {
    log.warn(`broker-auth: ${entry} does not exist yet, not started (RabbitMQ refuses browser logins meanwhile)`);
    return;
  }
  const hash = sourceHash(entry);
  const running = runningService(config);
  if (running) {
    const current = running.entry === entry && existsSync(hashFile) && readFileSync(hashFile, 'utf8').trim() === hash;
    if (current && (await isHealthy(config))) {
      log.info(`broker-auth: reusing pid ${running.pid} on port ${port}`);
      return;
    }
    await stopService(config, log, current ? 'not healthy' : 'sources changed');
  }
  if (await isPortOpen(host, port)) {
    throw new BrokerAuthError(`port ${host}:${port} is taken by a process we did not start; stop it or set ROOMCAST_BROKER_AUTH_PORT`);
  }
  log.info(`broker-auth: starting on ${host}:${port}`);
  const child = spawnService(config, entry);
  writeFileSync(hashFile, `${hash}\n`);
  let exited = false;
  child.once('exit', () => (exited = true));
  const failure = (what: string): BrokerAuthError =>
    new BrokerAuthError(`broker-auth ${what}; see ${logFile}:\n${logTail(logFile)}`);
  try {
    await waitUntil(
      () => {
        if (exited) throw failure('exited while starting');
        return isHealthy(config);
      },
      { timeoutMs: 60_000, intervalMs: 200, onTimeout: () => failure(`did not answer 200 on ${healthUrl(config)} within 60 s`) },
    );
  } catch (err) {
    await stopService(config, log, 'failed to start');
    throw err;
  }
}

export async function stopBrokerAuth(config: Config, log: Logger): Promise<void> {
  await stopService(config, log, 'down');
}

export async function brokerAuthStatus(config: Config): Promise<ServiceStatus> {
  const { host, port } = config.brokerAuth;
  const running = runningService(config);
  return { name: 'broker-auth', up: running !== null && (await isHealthy(config)), endpoint: `${host}:${port}`, pid: running?.pid ?? null };
}
