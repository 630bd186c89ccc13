/**
 * roomcast's own Exim 4 (Debian's exim4-daemon-light) on loopback: the SMTP relay mail is
 * handed to in development and tests. Its configuration is generated from `Config`
 * (exim-files.ts); it delivers every message, whatever the domain, into one Maildir under the
 * data folder, and refuses test-hook recipients with a 451 or a 550.
 *
 * Trusting the configuration file. Exim runs with `-C <file>` instead of /etc/exim4, and trusts
 * such a file only this far: started by root, it keeps root (to bind, fork and drop to its user)
 * and insists that the file belongs to root and is writable by root alone ("wrong owner, group,
 * or mode" otherwise). We write it so (0644, owner root) in a root-owned directory, so the exim
 * user can neither edit nor swap it. The daemon re-executes itself to deliver, and then the
 * caller is the exim user: a `-C` file not listed in TRUSTED_CONFIG_LIST
 * (/etc/exim4/trusted_configs) cannot give that process root back ("exim user lost privilege for
 * using -C option", into paniclog, at every delivery). Rather than list a path inside a checkout
 * in a system file, we set `deliver_drop_privilege`: every delivery runs as the exim user, into a
 * Maildir that user owns, never asking for root, so nothing is lost and paniclog stays empty.
 * Not root, Exim runs as us throughout (its user is then ours; no trust check applies).
 */
import { chmodSync, chownSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Config } from '../runtime/config';
import { EximError, eximConfig, eximPaths, type EximHook, type EximUser } from './exim-files';
import type { Logger } from './logger';
import { withStartLock } from './node-process';
import { ensureDir, letOthersReach } from './paths';
import { isProcessAlive, isRoot, logTail, readPidFile, runChecked, terminate, waitUntil } from './processes';
import { assertPortFree, type ServiceStatus } from './probes';

export { EximError } from './exim-files';

const PROGRAM = 'exim4';
/** The user Debian's exim4 packages create; the daemon drops root for it. */
const DEBIAN_EXIM = 'Debian-exim';

/** Debian-exim when we are root (Exim refuses to run deliveries as root), else ourselves. */
function eximUser(): EximUser {
  if (isRoot()) return { user: DEBIAN_EXIM, group: DEBIAN_EXIM };
  return { user: String(process.getuid?.()), group: String(process.getgid?.()) };
}

/**
 * Whether an SMTP server on host:port sends its 220 greeting within `timeoutMs`; says QUIT
 * after it, so Exim logs no lost connection.
 */
export function smtpGreets(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let received = '';
    let settled = false;
    const done = (greeted: boolean): void => {
      if (settled) return;
      settled = true;
      if (greeted) socket.end('QUIT\r\n');
      else socket.destroy();
      resolve(greeted);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n');
      if (end !== -1) done(/^220[ -]/.test(received.slice(0, end)));
    });
    socket.once('error', () => done(false));
    socket.once('end', () => done(false));
  });
}

const greets = (config: Config): Promise<boolean> => smtpGreets(config.mail.host, config.mail.port);

/** The daemon's pid, if the pid file names a live exim4 started with our configuration file. */
function runningPid(config: Config): number | null {
  const { pidFile, confFile } = eximPaths(config);
  const pid = readPidFile(pidFile);
  return pid !== null && isProcessAlive(pid, confFile) ? pid : null;
}

function configOnDisk(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** Creates the directories with the owners Exim needs and writes its configuration. */
async function prepareFiles(config: Config, log: Logger): Promise<void> {
  const p = eximPaths(config);
  const owner = eximUser();
  // The configuration's directory stays ours (root's): only the spool, logs and Maildir are Exim's.
  ensureDir(p.dir);
  ensureDir(p.hooksDir);
  const eximDirs = [ensureDir(p.spoolDir, 0o750), ensureDir(p.logDir), ensureDir(p.maildir)];
  for (const sub of ['new', 'cur', 'tmp']) ensureDir(path.join(p.maildir, sub));
  ensureDir(path.dirname(p.pidFile));
  if (isRoot()) {
    await runChecked('chown', ['-R', `${owner.user}:${owner.group}`, ...eximDirs]);
    letOthersReach(p.dir, (d) => log.warn(`exim: granted o+x on ${d} so the ${DEBIAN_EXIM} OS user can reach ${p.dir}`));
  }
  // Replaced rather than rewritten: a file someone else owns would keep its owner.
  rmSync(p.confFile, { force: true });
  writeFileSync(p.confFile, eximConfig(config, p, owner), { mode: 0o644 });
  chmodSync(p.confFile, 0o644); // whatever the umask: Exim refuses a group- or world-writable file
  if (isRoot()) chownSync(p.confFile, 0, 0);
}

/** Starts the Exim daemon unless ours already greets on the SMTP port. */
export async function ensureExim(config: Config, log: Logger): Promise<void> {
  const { host, port } = config.mail;
  const p = eximPaths(config);
  await withStartLock({ name: 'exim', pidFile: p.pidFile }, async () => {
    let pid = runningPid(config);
    // A daemon started from an older configuration (before a checkout changed exim-files.ts, e.g.
    // its inbound-mail route) would keep routing the old way: restart it with the new one.
    if (pid !== null && configOnDisk(p.confFile) !== eximConfig(config, p, eximUser())) {
      log.info(`exim: its configuration changed; restarting pid ${pid}`);
      await terminate(pid, p.confFile, { graceMs: 10_000 });
      rmSync(p.pidFile, { force: true });
      pid = null;
    }
    if (pid !== null) {
      await waitUntil(() => greets(config), {
        timeoutMs: 30_000,
        onTimeout: () =>
          new EximError(
            `our exim (pid ${pid}) does not greet on port ${port}; see ${p.logDir} ` +
              '(after changing ROOMCAST_SMTP_PORT, run `npm run services -- down` first)',
          ),
      });
      log.info(`exim: reusing the running daemon on port ${port}`);
      return;
    }
    await assertPortFree(host, port, 'exim', 'ROOMCAST_SMTP_PORT');
    await prepareFiles(config, log);
    log.info(`exim: starting on ${host}:${port}, delivering into ${p.maildir}`);
    // -bd: the daemon (it detaches, so this returns at once); -q5s: a queue run every 5 s
    // retries deferred mail. Listener, pid file and logs come from the configuration.
    await runChecked(PROGRAM, ['-C', p.confFile, '-bd', '-q5s'], { timeoutMs: 30_000 });
    await waitUntil(() => greets(config), {
      timeoutMs: 30_000,
      onTimeout: () => {
        const panic = path.join(p.logDir, 'paniclog');
        return new EximError(`exim did not greet on port ${port}; see ${p.logDir}:\n${logTail(panic)}\n${logTail(path.join(p.logDir, 'mainlog'))}`);
      },
    });
  });
}

/** SIGTERM ends the daemon (deliveries under way finish in their own processes). */
export async function stopExim(config: Config, log: Logger): Promise<void> {
  const { pidFile, confFile } = eximPaths(config);
  const pid = runningPid(config);
  if (pid !== null) {
    log.info(`exim: stopping pid ${pid}`);
    await terminate(pid, confFile, { graceMs: 10_000 });
  }
  // Exim leaves its pid file behind; a stale one is ours to remove too.
  rmSync(pidFile, { force: true });
}

export async function eximStatus(config: Config): Promise<ServiceStatus> {
  const { host, port } = config.mail;
  const pid = runningPid(config);
  return { name: 'exim', up: pid !== null && (await greets(config)), endpoint: `${host}:${port}`, pid };
}

/**
 * How many messages wait in Exim's queue (`exim4 -bpc`): deferred ones stay there until a
 * queue run delivers them, so 0 means everything accepted has been delivered or bounced.
 */
export async function eximQueueCount(config: Config): Promise<number> {
  const out = await runChecked(PROGRAM, ['-C', eximPaths(config).confFile, '-bpc'], { timeoutMs: 10_000 });
  const count = Number.parseInt(out.trim(), 10);
  if (!Number.isInteger(count)) throw new EximError(`exim4 -bpc printed ${JSON.stringify(out.trim())}, not a count`);
  return count;
}

/** Switches a test hook (EXIM_HOOKS) on or off; the running daemon sees it at its next check. */
export function setEximHook(config: Config, hook: EximHook, on: boolean): void {
  const flag = path.join(eximPaths(config).hooksDir, hook);
  if (on) writeFileSync(flag, `${new Date().toISOString()}\n`);
  else rmSync(flag, { force: true });
}

/** Tries every queued message now (`-qff`, frozen ones too) instead of at the next queue run; returns when the run ends. */
export async function eximQueueRun(config: Config): Promise<void> {
  await runChecked(PROGRAM, ['-C', eximPaths(config).confFile, '-qff'], { timeoutMs: 60_000 });
}
