/**
 * Child processes and pid files. Services are only ever signalled through a pid we recorded
 * (or the service wrote) and only after /proc confirms the pid still runs the expected
 * program, so a stale pid file never lets us kill an unrelated process.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** A command exited non-zero, timed out or could not be started. */
export class CommandError extends Error {
  override name = 'CommandError';
  readonly code = 'command_failed';
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Each output line as it arrives (for long commands such as apt-get). */
  onLine?: (line: string) => void;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion without a shell; never throws for a non-zero exit. */
export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const onData = (chunk: Buffer, sink: 'out' | 'err'): void => {
      const text = chunk.toString('utf8');
      if (sink === 'out') stdout += text;
      else stderr += text;
      if (opts.onLine) {
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) opts.onLine(line);
      }
    };
    child.stdout.on('data', (c: Buffer) => onData(c, 'out'));
    child.stderr.on('data', (c: Buffer) => onData(c, 'err'));
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          child.kill('SIGKILL');
          reject(new CommandError(`${cmd} ${args.join(' ')} timed out after ${opts.timeoutMs} ms`));
        }, opts.timeoutMs)
      : undefined;
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new CommandError(`cannot run ${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (partial.trim() && opts.onLine) opts.onLine(partial);
      resolve({ exitCode: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** Like runCommand, but a non-zero exit becomes a CommandError carrying the output's tail. */
export async function runChecked(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const res = await runCommand(cmd, args, opts);
  if (res.exitCode !== 0) {
    // Tools put the cause first (rabbitmqctl) or last (apt-get): keep both ends.
    const lines = (res.stderr.trim() || res.stdout.trim()).split('\n').filter((l) => l.trim());
    const output = (lines.length <= 6 ? lines : [...lines.slice(0, 2), '...', ...lines.slice(-3)]).join(' | ');
    throw new CommandError(`${cmd} ${args.join(' ')} failed (exit ${res.exitCode}): ${output}`);
  }
  return res.stdout;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The pid on the first line of a pid file, or null when the file is absent or garbled. */
export function readPidFile(file: string): number | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** True when `pid` is a live (non-zombie) process whose command line contains `programHint`. */
export function isProcessAlive(pid: number, programHint: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state letter follows the parenthesised command name, which may itself hold spaces.
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(programHint);
  } catch {
    return false;
  }
}

/** Waits until the process is gone; false on timeout. */
export async function waitForExit(pid: number, programHint: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid, programHint)) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

/** process.kill, except that a process which exited meanwhile (ESRCH) is not an error. */
export function signalIfAlive(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export interface TerminateOptions {
  signal?: NodeJS.Signals;
  graceMs?: number;
  /** Sent once the grace period is over; the process gets as long again to vanish. */
  fallbackSignal?: NodeJS.Signals;
}

/**
 * Stops one verified process: `signal` first, `fallbackSignal` after `graceMs`.
 * Returns 'not-running' when the pid is stale, 'stopped' when it exited in time, 'forced' otherwise.
 */
export async function terminate(
  pid: number,
  programHint: string,
  { signal = 'SIGTERM', graceMs = 30_000, fallbackSignal = 'SIGKILL' }: TerminateOptions = {},
): Promise<'not-running' | 'stopped' | 'forced'> {
  if (!isProcessAlive(pid, programHint)) return 'not-running';
  signalIfAlive(pid, signal);
  if (await waitForExit(pid, programHint, graceMs)) return 'stopped';
  signalIfAlive(pid, fallbackSignal);
  if (await waitForExit(pid, programHint, graceMs)) return 'forced';
  throw new CommandError(`process ${pid} (${programHint}) survived ${signal} and ${fallbackSignal}`);
}

/** Polls `check` until it returns true; throws `onTimeout()` after `timeoutMs`. */
export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  { timeoutMs, intervalMs = 200, onTimeout }: { timeoutMs: number; intervalMs?: number; onTimeout: () => Error },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw onTimeout();
    await sleep(intervalMs);
  }
}

/** Whether we may install packages, chown to service users and run commands as them. */
export const isRoot = (): boolean => process.getuid?.() === 0;

/** The last lines of a log file, for error messages that point at the cause. */
export function logTail(file: string, lines = 5): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(log file missing)';
  }
}
