/**
 * Our own Node services (broker-auth, app servers) as detached processes running a TypeScript
 * entry under tsx: pid file, log file, health check. The pid file holds the pid and, on its
 * second line, the entry path: the process's command line must contain it, which tells our
 * service from any process that reused the pid.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../runtime/config';
import type { Logger } from './logger';
import { ensureDir } from './paths';
import { isProcessAlive, isRoot, logTail, readPidFile, terminate, waitUntil } from './processes';
import { httpStatus } from './probes';

/** A Node service could not be started or did not become healthy. */
export class NodeServiceError extends Error {
  override name = 'NodeServiceError';
  readonly code = 'node_service_failed';
}

export interface NodeService {
  /** Shown in progress lines and errors. */
  name: string;
  entry: string;
  pidFile: string;
  logFile: string;
  healthUrl: string;
  /** Extra environment on top of this process's own. */
  env?: NodeJS.ProcessEnv;
  /** Open files the service should be allowed (raised as far as this user may). */
  openFiles?: number;
}

/** This process's open-file limits, from /proc (Linux). */
function openFileLimits(): { soft: number; hard: number } | null {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const [soft, hard] = (line?.match(/\d+|unlimited/g) ?? []).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  return soft !== undefined && hard !== undefined ? { soft, hard } : null;
}

/**
 * Raises a child's open-file limit: every WebSocket through the proxy holds two descriptors, so
 * the common default of 1,024 (or 20,000 here) caps it at half that many clients. Root may raise
 * the hard limit too; anyone may raise the soft one up to the hard one.
 */
function raiseOpenFiles(pid: number, wanted: number, log: Logger, name: string): void {
  const limits = openFileLimits();
  if (!limits || limits.soft >= wanted) return;
  const set = (soft: number, hard: number): string | null => {
    const res = spawnSync('prlimit', [`--pid=${pid}`, `--nofile=${soft}:${hard}`], { encoding: 'utf8' });
    return res.status === 0 ? null : (res.stderr || res.error?.message || `exit ${res.status}`).trim();
  };
  // Root may raise the hard limit too (unless a container withholds CAP_SYS_RESOURCE).
  const why = isRoot() ? set(wanted, wanted) : 'not root';
  if (why === null) return log.info(`${name}: open-file limit ${wanted}`);
  const limit = limits.hard > limits.soft && set(limits.hard, limits.hard) === null ? limits.hard : limits.soft;
  log.warn(`${name}: open-file limit ${limit}, not ${wanted} (${why}): about ${Math.floor(limit / 2)} WebSockets at most`);
}

export const isHealthy = async (s: NodeService): Promise<boolean> => (await httpStatus(s.healthUrl)) === 200;

/** The service's pid when it runs (its command line names the entry), else null. */
export function runningPid(s: NodeService): number | null {
  const pid = readPidFile(s.pidFile);
  const entry = existsSync(s.pidFile) ? readFileSync(s.pidFile, 'utf8').split('\n')[1] : undefined;
  return pid !== null && entry === s.entry && isProcessAlive(pid, entry) ? pid : null;
}

/** Spawns the service and waits for its health check; cleans up if it never gets healthy. */
export async function startNodeService(s: NodeService, log: Logger): Promise<number> {
  ensureDir(path.dirname(s.pidFile));
  ensureDir(path.dirname(s.logFile));
  const out = openSync(s.logFile, 'a');
  let pid: number | undefined;
  let exited = false;
  try {
    writeSync(out, `--- ${new Date().toISOString()} starting ${path.relative(repoRoot, s.entry)}\n`);
    // cwd = repo root so `--import tsx` resolves from the project's node_modules; a compiled
    // entry (dist/…, `npm run build`) runs with node alone.
    const args = s.entry.endsWith('.js') ? [s.entry] : ['--import', 'tsx', s.entry];
    const child = spawn(process.execPath, args, {
      cwd: repoRoot,
      env: { ...process.env, ...s.env },
      detached: true,
      stdio: ['ignore', out, out],
    });
    child.unref();
    child.once('exit', () => (exited = true));
    pid = child.pid;
    if (pid === undefined) throw new NodeServiceError(`could not spawn ${process.execPath} for ${s.entry}`);
    writeFileSync(s.pidFile, `${pid}\n${s.entry}\n`);
    if (s.openFiles) raiseOpenFiles(pid, s.openFiles, log, s.name);
  } finally {
    closeSync(out);
  }
  const failure = (what: string): NodeServiceError => new NodeServiceError(`${s.name} ${what}; see ${s.logFile}:\n${logTail(s.logFile)}`);
  try {
    await waitUntil(
      () => {
        if (exited) throw failure('exited while starting');
        return isHealthy(s);
      },
      { timeoutMs: 60_000, intervalMs: 200, onTimeout: () => failure(`did not answer 200 on ${s.healthUrl} within 60 s`) },
    );
  } catch (err) {
    await stopNodeService(s, log, 'failed to start');
    throw err;
  }
  return pid;
}

/** Stops the service by its pid file (SIGTERM, then SIGKILL after 10 s) and removes the file. */
export async function stopNodeService(s: NodeService, log: Logger, why: string): Promise<void> {
  const pid = runningPid(s);
  if (pid !== null) {
    log.info(`${s.name}: stopping pid ${pid} (${why})`);
    await terminate(pid, s.entry, { graceMs: 10_000 });
  }
  rmSync(s.pidFile, { force: true });
}

/**
 * Runs `fn` holding `<pidFile>.lock`, so two starters (a test run beside `npm start`, two test
 * runs) never both decide a service is missing and start it twice: the loser's process would
 * fail on the port and its clean-up would stop the winner's. A lock whose holder died is taken
 * over; one held for longer than a start could take is an error that names the holder.
 */
export async function withStartLock<T>(s: Pick<NodeService, 'name' | 'pidFile'>, fn: () => Promise<T>): Promise<T> {
  const lock = `${s.pidFile}.lock`;
  ensureDir(path.dirname(lock));
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const text = readFileSync(lock, 'utf8').trim();
      const holder = Number(text);
      // Empty: its holder is between creating and writing it; wait like for any holder.
      if (text !== '' && (!Number.isInteger(holder) || holder <= 0 || !isProcessAlive(holder, 'node'))) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new NodeServiceError(`${s.name}: ${lock} has been held by pid ${holder} for 2 minutes; is another start stuck?`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
