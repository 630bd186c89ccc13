/**
 * The TLS proxy `npm start` runs in front of the app servers: a Node process running
 * `proxy/src/main.ts` under tsx, checked through its loopback admin port.
 */
import path from 'node:path';
import { entryOf, type Config } from '../runtime/config';
import { publicUrl, tlsFiles } from '../proxy/src/index';
import type { Logger } from './logger';
import { isHealthy, runningPid, startNodeService, stopNodeService, type NodeService } from './node-process';
import { dataPaths } from './paths';
import { assertPortFree, type ServiceStatus } from './probes';

const PROXY_ENTRY = entryOf('proxy/src/main.ts');
/** The proxy's admin port is always on loopback (see proxy/src/proxy.ts). */
const ADMIN_HOST = '127.0.0.1';

function service(config: Config): NodeService {
  const { run, log } = dataPaths(config);
  return {
    name: 'proxy',
    entry: PROXY_ENTRY,
    pidFile: path.join(run, 'proxy.pid'),
    logFile: path.join(log, 'proxy.log'),
    healthUrl: `http://${ADMIN_HOST}:${config.proxy.adminPort}/healthz`,
    // Two per WebSocket (the browser's and the broker node's): room for 30,000 and then some.
    // Raised just after the proxy starts; the proxy re-reads it for its default per-address
    // limit (a quarter of the WebSockets it allows: proxy/src/descriptor-budget.ts).
    openFiles: 65_536,
  };
}

export interface ProxyInfo {
  url: string;
  /** The certificate it serves: the development one is self-signed, so clients must trust it. */
  certFile: string;
  started: boolean;
}

/** Starts the proxy unless a healthy one already runs. */
export async function ensureProxy(config: Config, log: Logger): Promise<ProxyInfo> {
  const s = service(config);
  const info = { url: publicUrl(config), certFile: tlsFiles(config).certFile };
  const pid = runningPid(s);
  if (pid !== null && (await isHealthy(s))) {
    log.info(`proxy: reusing pid ${pid}`);
    return { ...info, started: false };
  }
  if (pid !== null) await stopNodeService(s, log, 'not healthy');
  const { host, httpsPort, httpPort, adminPort } = config.proxy;
  await assertPortFree(host, httpsPort, 'proxy', 'ROOMCAST_PROXY_HTTPS_PORT');
  await assertPortFree(host, httpPort, 'proxy', 'ROOMCAST_PROXY_HTTP_PORT');
  await assertPortFree(ADMIN_HOST, adminPort, 'proxy', 'ROOMCAST_PROXY_ADMIN_PORT');
  log.info(`proxy: starting on ${info.url} (log ${s.logFile})`);
  await startNodeService(s, log);
  return { ...info, started: true };
}

/** SIGTERM: the proxy closes its WebSockets with 1001 and drains HTTP for up to 10 s. */
export async function stopProxy(config: Config, log: Logger): Promise<void> {
  await stopNodeService(service(config), log, 'stop');
}

/** Whether the proxy process is still alive (it is gone after `npm stop` elsewhere). */
export const proxyRunning = (config: Config): boolean => runningPid(service(config)) !== null;

export async function proxyStatus(config: Config): Promise<ServiceStatus> {
  const s = service(config);
  const pid = runningPid(s);
  return { name: 'proxy', up: pid !== null && (await isHealthy(s)), endpoint: publicUrl(config), pid };
}
