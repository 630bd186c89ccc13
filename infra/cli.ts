/**
 * `tsx infra/cli.ts <command>` (`npm run services -- <command>`). Each command is one entry
 * of the table below; any failure prints one line saying what to do and exits 1.
 */
import { loadConfig, type Config } from '../shared/config';
import { ensureServices, servicesStatus, stopServices, type Logger } from './index';

const log: Logger = {
  info: (msg) => console.log(`[infra] ${msg}`),
  warn: (msg) => console.log(`[infra] warning: ${msg}`),
};

/** Raised for a command line we cannot run; its message lists the valid commands. */
class UsageError extends Error {
  override name = 'UsageError';
  readonly code = 'usage';
}

interface Command {
  summary: string;
  run(config: Config): Promise<void>;
}

const commands: Record<string, Command> = {
  up: { summary: 'start (or reuse) postgres, redis, broker-auth and the RabbitMQ cluster', run: (c) => ensureServices(c, log) },
  down: { summary: 'stop every service started by `up`', run: (c) => stopServices(c, log) },
  status: { summary: 'show each service as up or down, with its address', run: printStatus },
  start: { summary: 'start the app server (not available yet)', run: notYet('start') },
  stop: { summary: 'stop the app server (not available yet)', run: notYet('stop') },
};

async function printStatus(config: Config): Promise<void> {
  for (const s of await servicesStatus(config)) {
    const pid = s.pid === null ? '' : `  pid ${s.pid}`;
    log.info(`${s.name.padEnd(30)} ${(s.up ? 'up' : 'down').padEnd(5)} ${s.endpoint}${pid}`);
  }
}

function notYet(name: string): Command['run'] {
  return () => Promise.reject(new UsageError(`\`${name}\` is not implemented yet: it arrives with the app server`));
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
  if (rest.length > 0) throw new UsageError(usage(`unexpected arguments after ${name}: ${rest.join(' ')}`));
  await command.run(loadConfig());
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // The first line says what failed and what to do; any further lines are a log excerpt.
  const [first, ...excerpt] = (err instanceof Error ? err.message : String(err)).split('\n');
  console.error(`[infra] error: ${first}`);
  for (const line of excerpt) console.error(`[infra]   | ${line}`);
  process.exit(1);
});
