/** The app server processes `npm start` runs next to the services (server/src/main.ts under tsx). */
import path from 'node:path';
import { repoRoot, type Config } from '../shared/config';
import type { Logger } from './logger';
import { isHealthy, runningPid, startNodeService, stopNodeService, type NodeService } from './node-process';
import { dataPaths } from './paths';
import { isPortOpen } from './probes';

const APP_ENTRY = path.join(repoRoot, 'server', 'src', 'main.ts');

function appService(config: Config): NodeService {
  const { run, log } = dataPaths(config);
  const { host, port } = config.app;
  return {
    name: `app server :${port}`,
    entry: APP_ENTRY,
    pidFile: path.join(run, 'app-1.pid'),
    logFile: path.join(log, 'app-1.log'),
    healthUrl: `http://${host}:${port}/healthz`,
    env: { ROOMCAST_APP_PORT: String(port) },
  };
}

/** Starts the app server unless it already runs; returns its URL and whether this call started it. */
export async function ensureAppServer(config: Config, log: Logger): Promise<{ url: string; started: boolean }> {
  const s = appService(config);
  const url = `http://${config.app.host}:${config.app.port}`;
  const pid = runningPid(s);
  if (pid !== null && (await isHealthy(s))) {
    log.info(`${s.name}: reusing pid ${pid}`);
    return { url, started: false };
  }
  if (pid !== null) await stopNodeService(s, log, 'not healthy');
  if (await isPortOpen(config.app.host, config.app.port)) {
    throw new Error(`port ${config.app.host}:${config.app.port} is taken by a process we did not start; stop it or set ROOMCAST_APP_PORT`);
  }
  log.info(`${s.name}: starting (log ${s.logFile})`);
  await startNodeService(s, log);
  return { url, started: true };
}

export async function stopAppServer(config: Config, log: Logger): Promise<void> {
  await stopNodeService(appService(config), log, 'stop');
}

/** Whether the app server process is still alive (it is gone after `npm stop` elsewhere). */
export const appServerRunning = (config: Config): boolean => runningPid(appService(config)) !== null;
