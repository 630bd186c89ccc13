/**
 * The app server processes `npm start` runs behind the proxy (server/src/main.ts under tsx):
 * `config.app.servers` of them, server i (1-based) on port `app.port + i - 1` (and its inbound-mail
 * LMTP listener on `inbound.lmtpPort + i - 1`), with pid file
 * `app-<i>.pid` and log `app-<i>.log`.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { entryOf, type Config } from '../runtime/config';
import type { Logger } from './logger';
import { isHealthy, runningPid, startNodeService, stopNodeService, type NodeService } from './node-process';
import { dataPaths } from './paths';
import { isPortOpen, type ServiceStatus } from './probes';

const APP_ENTRY = entryOf('server/src/main.ts');

function appService(config: Config, index: number): NodeService & { port: number } {
  const { run, log } = dataPaths(config);
  const { host } = config.app;
  const port = config.app.port + index - 1;
  return {
    name: `app server ${index} :${port}`,
    entry: APP_ENTRY,
    pidFile: path.join(run, `app-${index}.pid`),
    logFile: path.join(log, `app-${index}.log`),
    healthUrl: `http://${host}:${port}/healthz`,
    // Its LMTP listener the same way: server i on lmtpPort + i - 1, as Exim's route lists them (exim-files.ts).
    env: { ROOMCAST_APP_PORT: String(port), ROOMCAST_LMTP_PORT: String(config.inbound.lmtpPort + index - 1) },
    port,
  };
}

const appServices = (config: Config): (NodeService & { port: number })[] =>
  Array.from({ length: config.app.servers }, (_, i) => appService(config, i + 1));

/** Starts one app server unless it already runs healthy; true when this call started it. */
async function ensureOne(config: Config, s: NodeService & { port: number }, log: Logger): Promise<boolean> {
  const pid = runningPid(s);
  if (pid !== null && (await isHealthy(s))) {
    log.info(`${s.name}: reusing pid ${pid}`);
    return false;
  }
  if (pid !== null) await stopNodeService(s, log, 'not healthy');
  if (await isPortOpen(config.app.host, s.port)) {
    throw new Error(`port ${config.app.host}:${s.port} is taken by a process we did not start; stop it or set ROOMCAST_APP_PORT`);
  }
  log.info(`${s.name}: starting (log ${s.logFile})`);
  await startNodeService(s, log);
  return true;
}

/**
 * Starts every app server that does not already run; returns their URLs and whether this call
 * started any. They start in parallel: each runs the migrations, which take a lock.
 */
export async function ensureAppServers(config: Config, log: Logger): Promise<{ urls: string[]; started: boolean }> {
  const services = appServices(config);
  const started = await Promise.all(services.map((s) => ensureOne(config, s, log)));
  return { urls: services.map((s) => `http://${config.app.host}:${s.port}`), started: started.some(Boolean) };
}

/** Stops them all, by pid file: also those left from a start with more ROOMCAST_APP_SERVERS. */
export async function stopAppServers(config: Config, log: Logger): Promise<void> {
  const { run } = dataPaths(config);
  const recorded = existsSync(run) ? readdirSync(run).map((f) => Number(/^app-(\d+)\.pid$/.exec(f)?.[1] ?? 0)) : [];
  const count = Math.max(config.app.servers, ...recorded);
  await Promise.all(Array.from({ length: count }, (_, i) => stopNodeService(appService(config, i + 1), log, 'stop')));
}

export async function appServersStatus(config: Config): Promise<ServiceStatus[]> {
  return Promise.all(
    appServices(config).map(async (s, i) => {
      const pid = runningPid(s);
      return { name: `app server ${i + 1}`, up: pid !== null && (await isHealthy(s)), endpoint: `${config.app.host}:${s.port}`, pid };
    }),
  );
}
