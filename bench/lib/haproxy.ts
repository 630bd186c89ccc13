/**
 * HAProxy (2.6, Debian's package) as a reference front end: the proxy's two routes over TLS,
 * `/ws` tunnelled to the Web-STOMP node with the fewest connections and everything else round
 * robin to the app servers over kept-alive connections. It does none of the proxy's STOMP gate,
 * per-address limits or origin check, so a run through it shows what a stock load balancer
 * costs on the same traffic. HAProxy runs in the foreground as a child of this process, one
 * process (no master), so the pid returned is the one doing the work.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type HaproxyErrorCode = 'not_installed' | 'invalid_options' | 'invalid_config' | 'start_failed';

export class HaproxyError extends Error {
  override name = 'HaproxyError';
  constructor(
    readonly code: HaproxyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const NOT_INSTALLED = 'HAProxy is not installed. Run as root: apt-get install -y haproxy';
/** Debian installs it in /usr/sbin, which a normal user's PATH lacks. */
const BINARIES = ['haproxy', '/usr/sbin/haproxy'];
const READY_TIMEOUT_MS = 10_000;
const POLL_MS = 100;
const STOP_TIMEOUT_MS = 5000;
/** Far above any scenario; HAProxy sizes its descriptor tables by it, so an unlimited hard limit must not be taken at its word. */
const MAX_CONNECTIONS = 65_536;
/**
 * HAProxy counts two descriptors per connection, three per thread (poller, wake-up pipe) and
 * about a dozen of its own, and refuses to start (strict-limits, on by default in 2.6) when the
 * sum exceeds the hard open-file limit. The rest is for what it does not count: stdio, health checks.
 */
const RESERVED_DESCRIPTORS = 64;
const MAX_THREADS = 64;
/** Enough of HAProxy's stderr to hold its alerts when a start fails. */
const STDERR_TAIL_CHARS = 4096;

export interface HaproxyOptions {
  /** The TLS port on 127.0.0.1. */
  port: number;
  certPem: string;
  keyPem: string;
  /** One per RabbitMQ node: `ws://127.0.0.1:15674/ws`. All must share one path. */
  webStompUrls: string[];
  /** `http://127.0.0.1:3000` */
  appUrls: string[];
  /** Scratch directory for `haproxy.cfg` and `haproxy.pem` (certificate and key, mode 0600). */
  dir: string;
  /** Default 1, like the proxy's single process. */
  threads?: number;
  /** Default: as many as the hard open-file limit allows (see `maxconnFor`). */
  maxconn?: number;
}

export interface HaproxyFrontEnd {
  /** `https://127.0.0.1:<port>` */
  url: string;
  pid: number;
  /** Connections HAProxy accepts at once, WebSockets and HTTP together. */
  maxconn: number;
  /** `2.6.12-1+deb12u4` */
  version: string;
  configPath: string;
  /** SIGTERM (an immediate stop), then SIGKILL if it has not exited after 5 s. */
  stop(): Promise<void>;
}

interface Upstream {
  address: string;
  path: string;
}

/** `host:port` and path of a `ws:` or `http:` URL; HAProxy speaks plain HTTP to its servers here. */
function upstream(raw: string, protocol: 'ws:' | 'http:'): Upstream {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (cause) {
    throw new HaproxyError('invalid_options', `not a URL: ${raw}`, { cause });
  }
  if (url.protocol !== protocol) throw new HaproxyError('invalid_options', `${raw}: expected a ${protocol}// URL`);
  return { address: `${url.hostname}:${url.port || '80'}`, path: url.pathname };
}

/** The hard open-file limit this process (and so its children) has, from /proc; null when unlimited or unreadable. */
function hardOpenFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const hard = line?.match(/(\d+|unlimited)\s+(\d+|unlimited)/)?.[2];
    return hard === undefined || hard === 'unlimited' ? null : Number(hard);
  } catch {
    return null;
  }
}

/** The most connections that fit in the hard open-file limit (HAProxy raises its soft limit itself). */
export function maxconnFor(threads: number, hardLimit: number | null = hardOpenFileLimit()): number {
  if (hardLimit === null) return MAX_CONNECTIONS;
  return Math.min(MAX_CONNECTIONS, Math.floor((hardLimit - RESERVED_DESCRIPTORS - 3 * threads) / 2));
}

function config(o: { port: number; pemPath: string; webStomp: Upstream[]; apps: Upstream[]; threads: number; maxconn: number }): string {
  const servers = (prefix: string, list: Upstream[]): string[] => list.map((u, i) => `    server ${prefix}${i + 1} ${u.address} check`);
  return [
    '# Written by bench/lib/haproxy.ts for one benchmark run.',
    'global',
    `    nbthread ${o.threads}`,
    `    maxconn ${o.maxconn}`,
    '    # A port already taken fails the start instead of being shared with whoever holds it.',
    '    noreuseport',
    '    # No log target: traffic is not logged; alerts and warnings (a server down) go to stderr.',
    '',
    'defaults',
    '    mode http',
    '    timeout connect 5s',
    '    timeout client 30s',
    '    # As the proxy: an app server silent for 30 s gets the client a 502.',
    '    timeout server 30s',
    '    timeout http-request 10s',
    '    timeout http-keep-alive 30s',
    '',
    'frontend public',
    `    bind 127.0.0.1:${o.port} ssl crt ${o.pemPath} alpn http/1.1`,
    `    maxconn ${o.maxconn}`,
    '    # Operator-only paths stay unreachable from the public port, as with the proxy (request-policy.ts).',
    '    http-request deny deny_status 404 if { path,url_dec,lower -m str /metrics /internal /auth } || { path,url_dec,lower -m beg /internal/ /auth/ }',
    '    # Replaced, not appended to: the app server rate-limits by the address it finds here.',
    '    http-request set-header X-Forwarded-For %[src]',
    '    http-request set-header X-Forwarded-Proto https',
    '    use_backend web_stomp if { path /ws }',
    '    default_backend app',
    '',
    'backend web_stomp',
    '    balance leastconn',
    `    http-request set-path ${o.webStomp[0]?.path ?? '/ws'}`,
    '    # An upgraded connection lives on between STOMP heart-beats; only a dead peer reaches this.',
    '    timeout tunnel 1h',
    ...servers('node', o.webStomp),
    '',
    'backend app',
    '    balance roundrobin',
    '    http-reuse always',
    '    # A POST on a kept-alive connection the app server closed as it was reused gets no answer',
    '    # (Node closes idle ones after 5 s). The proxy replays it once; HAProxy cannot tell a reused',
    '    # connection from a fresh one, so it replays any request left unanswered, which is safe for',
    '    # the traffic it carries here: sends, each with its idempotency key (clientMsgId).',
    '    retry-on conn-failure empty-response',
    '    retries 1',
    '    option redispatch 1',
    ...servers('app', o.apps),
    '',
  ].join('\n');
}

/** The first HAProxy binary that runs, and its version. */
async function findHaproxy(): Promise<{ binary: string; version: string }> {
  for (const binary of BINARIES) {
    try {
      const { stdout } = await run(binary, ['-v']);
      return { binary, version: stdout.match(/version (\S+)/)?.[1] ?? 'unknown' };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new HaproxyError('start_failed', `${binary} -v failed`, { cause: err });
    }
  }
  throw new HaproxyError('not_installed', NOT_INSTALLED);
}

/** Whether something completes a TLS handshake on the port (any certificate: this only asks whether HAProxy serves yet). */
function acceptsTls(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.setTimeout(READY_TIMEOUT_MS / 10, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(false));
  });
}

/**
 * Whether the port can be bound on 127.0.0.1. Checked before HAProxy starts because the
 * readiness probe cannot tell who answers it: with the port taken, it would reach the holder
 * while HAProxy fails to bind (noreuseport) and exits.
 */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function validated(o: HaproxyOptions): { webStomp: Upstream[]; apps: Upstream[]; threads: number } {
  const threads = o.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) throw new HaproxyError('invalid_options', `threads must be 1 to ${MAX_THREADS}, not ${threads}`);
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new HaproxyError('invalid_options', `port must be 1 to 65535, not ${o.port}`);
  if (o.webStompUrls.length === 0 || o.appUrls.length === 0) throw new HaproxyError('invalid_options', 'at least one Web-STOMP URL and one app URL are needed');
  const webStomp = o.webStompUrls.map((u) => upstream(u, 'ws:'));
  const apps = o.appUrls.map((u) => upstream(u, 'http:'));
  // One backend rewrites one path; nodes of one cluster all listen on the same.
  if (new Set(webStomp.map((u) => u.path)).size > 1) throw new HaproxyError('invalid_options', `Web-STOMP URLs must share one path: ${o.webStompUrls.join(', ')}`);
  return { webStomp, apps, threads };
}

/**
 * Writes the configuration and the combined PEM to `o.dir`, checks the configuration with
 * `haproxy -c`, starts HAProxy and resolves once its port completes a TLS handshake.
 */
export async function startHaproxy(o: HaproxyOptions): Promise<HaproxyFrontEnd> {
  const { webStomp, apps, threads } = validated(o);
  const maxconn = o.maxconn ?? maxconnFor(threads);
  if (!Number.isInteger(maxconn) || maxconn < 1) throw new HaproxyError('invalid_options', `maxconn must be a positive integer, not ${maxconn} (is the open-file limit very low?)`);
  const { binary, version } = await findHaproxy();

  await mkdir(o.dir, { recursive: true });
  const pemPath = path.join(o.dir, 'haproxy.pem');
  const configPath = path.join(o.dir, 'haproxy.cfg');
  // Removed first: writeFile's mode applies only to a file it creates, and this one holds the key.
  await rm(pemPath, { force: true });
  await writeFile(pemPath, `${o.certPem.trimEnd()}\n${o.keyPem.trimEnd()}\n`, { mode: 0o600 });
  await writeFile(configPath, config({ port: o.port, pemPath, webStomp, apps, threads, maxconn }));

  try {
    // -dW: a warning means the generated configuration is wrong, so it fails the check too.
    await run(binary, ['-c', '-dW', '-f', configPath]);
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new HaproxyError('invalid_config', `${configPath} is invalid: ${`${stderr}${stdout}`.trim()}`, { cause: err });
  }

  if (!(await portIsFree(o.port))) throw new HaproxyError('start_failed', `127.0.0.1:${o.port} is already in use`);
  // -db: foreground, one process, no daemon; HAProxy exits at once on SIGTERM.
  const child = spawn(binary, ['-db', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  const { pid } = child;
  // The binary ran a moment ago, so this is rare (a file replaced, no process slots); its 'error' event follows.
  child.on('error', () => undefined);
  if (pid === undefined) throw new HaproxyError('start_failed', `${binary} could not be started`);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const hasExited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  // A parent that dies without stop() must not leave HAProxy holding the port.
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);

  // Kept until it serves, for the error if it does not; afterwards passed on (a server going down).
  let serving = false;
  let stderrTail = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (serving) process.stderr.write(chunk);
    else stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
  });

  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    if (hasExited()) return;
    child.kill('SIGTERM');
    const gone = await Promise.race([exited.then(() => true), sleep(STOP_TIMEOUT_MS, false, { ref: false })]);
    if (!gone) {
      child.kill('SIGKILL');
      await exited;
    }
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (hasExited()) {
      await stop();
      throw new HaproxyError('start_failed', `HAProxy exited before serving: ${stderrTail.trim() || `exit code ${child.exitCode}`}`);
    }
    if (await acceptsTls(o.port)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new HaproxyError('start_failed', `HAProxy did not accept TLS on 127.0.0.1:${o.port} within ${READY_TIMEOUT_MS / 1000} s: ${stderrTail.trim()}`);
    }
    await sleep(POLL_MS);
  }
  serving = true;
  return { url: `https://127.0.0.1:${o.port}`, pid, maxconn, version, configPath, stop };
}
