/**
 * The faults a chaos run injects, each a real action on a real process of the running system:
 * broker nodes, app servers, the proxy, Postgres. Every fault has its repair.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Config } from '../../runtime/config';
import { appServersStatus, ensureAppServers } from '../../infra/app-servers';
import { killNode, servicesStatus, startNode, type Logger } from '../../infra/index';
import { waitUntil } from '../../infra/processes';
import { isPortOpen } from '../../infra/probes';
import { ensureProxy, stopProxy } from '../../infra/proxy-service';
import type { Fault } from './room-load';


/** Every process whose parent is `pid` (Postgres backends of the postmaster). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** Stops Postgres (postmaster and backends) for `ms`; `during`, if given, runs halfway through. */
async function pausePostgres(config: Config, ms: number, during?: () => Promise<void>): Promise<void> {
  const pg = (await servicesStatus(config)).find((s) => s.name.startsWith('postgres'));
  if (!pg?.pid) throw new Error('postgres is not running');
  const pids = [pg.pid, ...childrenOf(pg.pid)];
  // A backend may exit between the listing and its signal. That must neither fail the fault
  // nor skip the SIGCONTs: a postmaster left stopped takes the whole run down with it.
  const signal = (sig: NodeJS.Signals): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  };
  const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, t));
  try {
    signal('SIGSTOP');
    await sleep(ms / 2);
    await during?.();
    await sleep(ms / 2);
  } finally {
    signal('SIGCONT');
  }
}

/** SIGKILL, then wait until the kernel has torn the process down and its port is free again. */
async function killAppServer(config: Config, index: number): Promise<void> {
  const s = (await appServersStatus(config))[index - 1];
  if (!s?.pid) throw new Error(`app server ${index} is not running`);
  process.kill(s.pid, 'SIGKILL');
  const port = config.app.port + index - 1;
  await waitUntil(async () => !(await isPortOpen(config.app.host, port)), {
    timeoutMs: 10_000,
    onTimeout: () => new Error(`app server ${index} still answers on ${port} after SIGKILL`),
  });
}

/** The default schedule: both kinds of broker loss, an app server crash, a proxy restart, a database stall. */
export function faultSchedule(config: Config, log: Logger): Fault[] {
  return [
    { at: 0.1, name: 'kill -9 rabbitmq node 1', run: () => killNode(config, 1) },
    { at: 0.25, name: 'restart rabbitmq node 1', run: () => startNode(config, 1, log) },
    { at: 0.32, name: 'kill -9 rabbitmq node 2', run: () => killNode(config, 2) },
    { at: 0.47, name: 'restart rabbitmq node 2', run: () => startNode(config, 2, log) },
    { at: 0.52, name: 'kill -9 app server 1', run: () => killAppServer(config, 1) },
    { at: 0.6, name: 'restart app server 1', run: async () => void (await ensureAppServers(config, log)) },
    {
      at: 0.66,
      name: 'restart the proxy',
      run: async () => {
        await stopProxy(config, log);
        await ensureProxy(config, log);
      },
    },
    { at: 0.7, name: 'pause postgres for 4 s', run: () => pausePostgres(config, 4000) },
    // The sends app server 1 has handed to the stopped Postgres still commit when it resumes, but
    // their publishes died with the server: only the other server's outbox relay publishes them,
    // seconds late, while the room goes on. Clients between connections then must still get them.
    {
      at: 0.78,
      name: 'kill -9 app server 1 mid-send',
      run: () => pausePostgres(config, 3000, () => killAppServer(config, 1)),
    },
    { at: 0.86, name: 'restart app server 1 again', run: async () => void (await ensureAppServers(config, log)) },
  ];
}
