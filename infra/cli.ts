/**
 * `tsx infra/cli.ts <command>` (`npm run services -- <command>`). Each command is one entry
 * of the table below; any failure prints one line saying what to do and exits 1.
 */
import { INFRA_ROLES, loadConfig, type Config } from '../runtime/config';
import { seedDemo } from '../server/src/cli/seed-demo';
import { appServersStatus } from './app-servers';
import { eximPaths, summarizeMaildir } from './exim-files';
import { ensureServices, servicesStatus, stopServices, type Logger } from './index';
import { ensureHostShare, stopFrontEnds } from './system';
import { proxyRunning, proxyStatus, type ProxyInfo } from './proxy-service';

const print = (stream: NodeJS.WriteStream, line: string): boolean => stream.write(`[infra] ${line}\n`);

const log: Logger = {
  info: (msg) => print(process.stdout, msg),
  warn: (msg) => print(process.stdout, `warning: ${msg}`),
};

/** Raised for a command line we cannot run; its message lists the valid commands. */
class UsageError extends Error {
  override name = 'UsageError';
  readonly code = 'usage';
}

const MAIL_LIST_LENGTH = 20;

interface Command {
  summary: string;
  /** Flags the command takes (`--detach`); any other argument is a usage error. */
  flags?: string[];
  run(config: Config, flags: Set<string>): Promise<void>;
}

const commands: Record<string, Command> = {
  up: { summary: 'start (or reuse) postgres, redis, exim, broker-auth and the RabbitMQ cluster (those of ROOMCAST_INFRA_ROLES)', run: (c) => ensureServices(c, log) },
  down: { summary: 'stop every service started by `up`', run: (c) => stopServices(c, log) },
  status: { summary: 'show each service, app server and the proxy as up or down, with its address', run: printStatus },
  start: {
    summary: 'up, then run the app servers (they migrate) and the TLS proxy, and seed the demo; Ctrl-C stops all. ' +
      'With ROOMCAST_INFRA_ROLES, only this host\'s share. --detach: return once it is up',
    flags: ['--detach'],
    run: (c, flags) => startAll(c, flags.has('--detach')),
  },
  stop: { summary: 'stop the proxy, the app servers and every service this host runs', run: stopAll },
  mail: { summary: `list the newest ${MAIL_LIST_LENGTH} mails Exim delivered into the local Maildir (recipient, subject, date, file)`, run: printMail },
};

async function printStatus(config: Config): Promise<void> {
  const [services, apps, proxy] = await Promise.all([servicesStatus(config), appServersStatus(config), proxyStatus(config)]);
  for (const s of [...services, ...apps, proxy]) {
    const pid = s.pid === null ? '' : `  pid ${s.pid}`;
    log.info(`${s.name.padEnd(30)} ${(s.up ? 'up' : 'down').padEnd(5)} ${s.endpoint}${pid}`);
  }
}

/** No mail leaves the machine: the local Exim delivers all of it into one Maildir, listed here newest first. */
async function printMail(config: Config): Promise<void> {
  const { maildir } = eximPaths(config);
  const { total, mails } = summarizeMaildir(config, MAIL_LIST_LENGTH);
  if (total === 0) {
    log.info(`no mail in ${maildir} yet`);
    return;
  }
  log.info(`${mails.length} newest of ${total} in ${maildir} (any mail reader opens it: mutt -f ${maildir})`);
  for (const m of mails) {
    console.log(`${m.deliveredAt.toISOString()}  to ${m.recipient}  ${JSON.stringify(m.subject)}\n    date ${m.date}\n    ${m.file}`);
  }
}

async function startAll(config: Config, detach: boolean): Promise<void> {
  // Services this run finds running belong to someone else (another checkout's run, the tests):
  // stopping them on Ctrl-C would take them away from under it.
  const servicesWereUp = (await servicesStatus(config)).every((s) => s.up);
  const share = await ensureHostShare(config, log);
  const { appUrls, proxy } = share;
  const oneHostOfSeveral = INFRA_ROLES.some((r) => !config.roles.includes(r)) || proxy === null;
  if (oneHostOfSeveral) {
    // No demo (the data host may not be up yet), just what runs here.
    log.info(`this host runs ${config.roles.join(', ')}${appUrls.length > 0 ? `; app servers ${appUrls.join(', ')}` : ''}${proxy ? `; proxy ${proxy.url}` : ''}`);
  } else {
    await printWelcome(config, proxy, appUrls);
  }
  if (detach) {
    log.info('running in the background; `npm stop` (infra stop) stops it');
    return;
  }
  // A host of several stays in the foreground whatever it found running, and stops its share on
  // SIGTERM: a service manager that sees it exit would take the host's services down with it.
  if (oneHostOfSeveral) await runUntilStopped(config, true, false);
  else await runUntilStopped(config, share.started, servicesWereUp);
}

async function printWelcome(config: Config, proxy: ProxyInfo, appUrls: string[]): Promise<void> {
  const demo = await seedDemo(config);
  console.log(
    [
      '',
      `roomcast is up: ${proxy.url}`,
      `  TLS certificate: ${proxy.certFile}${config.proxy.tls ? '' : ' (self-signed for localhost and 127.0.0.1; trust it, or accept the browser warning)'}`,
      `  app servers behind it: ${appUrls.join(', ')}`,
      `  demo room "${demo.room.name}", invite code ${demo.room.inviteCode}`,
      `  instructor login: ${demo.instructor} / ${demo.password}`,
      `  learner logins:   ${demo.learners.join(', ')} / ${demo.password}`,
      `  try: curl -s --cacert ${proxy.certFile} -X POST ${proxy.url}/api/auth/login -H 'content-type: application/json' -d '{"username":"${demo.instructor}","password":"${demo.password}"}'`,
      `  mail: nothing leaves this machine; every mail lands in ${eximPaths(config).maildir} (list it: npm run services -- mail)`,
      '',
    ].join('\n'),
  );
}

/** Waits for Ctrl-C (or the proxy gone after `npm stop` elsewhere), then stops what this run started. */
async function runUntilStopped(config: Config, started: boolean, servicesWereUp: boolean): Promise<void> {
  if (!started) {
    log.info('everything was already running; `npm stop` stops it');
    return;
  }
  log.info(
    servicesWereUp
      ? 'running; Ctrl-C stops the app servers and the proxy (the services were already running and stay up; `npm stop` stops everything)'
      : 'running; Ctrl-C (or `npm stop` elsewhere) stops everything',
  );
  const stoppedElsewhere = await new Promise<boolean>((resolve) => {
    process.once('SIGINT', () => resolve(false));
    process.once('SIGTERM', () => resolve(false));
    const watch = setInterval(() => {
      if (config.roles.includes('proxy') && !proxyRunning(config)) {
        clearInterval(watch);
        resolve(true);
      }
    }, 1000);
  });
  if (stoppedElsewhere) log.info('the proxy is gone (npm stop?); stopping what is left of this run');
  await (servicesWereUp ? stopFrontEnds(config, log) : stopAll(config));
  process.exit(0);
}

async function stopAll(config: Config): Promise<void> {
  await stopFrontEnds(config, log);
  await stopServices(config, log);
}

function usage(problem: string): string {
  const names = Object.keys(commands);
  const lines = Object.entries(commands).map(([name, c]) => `${name.padEnd(7)} ${c.summary}`);
  return [`${problem}; usage: tsx infra/cli.ts <${names.join('|')}>`, ...lines].join('\n');
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const command = name !== undefined && Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) throw new UsageError(usage(name === undefined ? 'no command given' : `unknown command "${name}"`));
  const unexpected = rest.filter((a) => !(command.flags ?? []).includes(a));
  if (unexpected.length > 0) throw new UsageError(usage(`unexpected arguments after ${name}: ${unexpected.join(' ')}`));
  await command.run(loadConfig(), new Set(rest));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // The first line says what failed and what to do; any further lines are a log excerpt.
  const [first, ...excerpt] = (err instanceof Error ? err.message : String(err)).split('\n');
  print(process.stderr, `error: ${first}`);
  for (const line of excerpt) print(process.stderr, `  | ${line}`);
  process.exitCode = 1;
});
