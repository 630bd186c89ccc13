/**
 * The whole running system as `npm start` runs it: the services, the app servers and the
 * proxy in front of them. Shared by `npm start`, the chaos run and the benchmarks.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../runtime/config';
import { ensureAppServers, stopAppServers } from './app-servers';
import { ensureServices, type Logger } from './index';
import { ensureProxy, stopProxy, type ProxyInfo } from './proxy-service';

export interface RunningSystem {
  appUrls: string[];
  proxy: ProxyInfo;
  /** PEM of the proxy's certificate, for clients that must trust it. */
  ca: string;
  /** True when this call started the app servers or the proxy (so the caller should stop them). */
  started: boolean;
}

/** Starts what is not running yet and reuses the rest. */
export async function ensureSystem(config: Config, log: Logger): Promise<RunningSystem> {
  await ensureServices(config, log);
  const apps = await ensureAppServers(config, log);
  const proxy = await ensureProxy(config, log);
  return { appUrls: apps.urls, proxy, ca: readFileSync(proxy.certFile, 'utf8'), started: apps.started || proxy.started };
}

/** Stops the proxy, then the app servers (front to back, so no client is sent to a server going away). */
export async function stopFrontEnds(config: Config, log: Logger): Promise<void> {
  await stopProxy(config, log);
  await stopAppServers(config, log);
}
