/**
 * The whole running system as `npm start` runs it: the services, the app servers and the
 * proxy in front of them. Shared by `npm start`, the chaos run and the benchmarks.
 */
import { readFileSync } from 'node:fs';
import { INFRA_ROLES, type Config } from '../runtime/config';
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

/** What one host runs of the system: its roles' services, its app servers, its proxy. */
export interface HostShare {
  appUrls: string[];
  proxy: ProxyInfo | null;
  /** True when this call started app servers or the proxy (so the caller should stop them). */
  started: boolean;
}

/** Starts this host's roles (ROOMCAST_INFRA_ROLES) where they do not run yet, and reuses the rest. */
export async function ensureHostShare(config: Config, log: Logger): Promise<HostShare> {
  await ensureServices(config, log);
  const apps = config.roles.includes('app') ? await ensureAppServers(config, log) : { urls: [], started: false };
  const proxy = config.roles.includes('proxy') ? await ensureProxy(config, log) : null;
  return { appUrls: apps.urls, proxy, started: apps.started || (proxy?.started ?? false) };
}

/** The whole system on this machine (every role): starts what is not running yet and reuses the rest. */
export async function ensureSystem(config: Config, log: Logger): Promise<RunningSystem> {
  const missing = INFRA_ROLES.filter((r) => !config.roles.includes(r));
  if (missing.length > 0) throw new Error(`this runs the whole system on one machine, but ROOMCAST_INFRA_ROLES leaves out ${missing.join(', ')}`);
  const { appUrls, proxy, started } = await ensureHostShare(config, log);
  if (!proxy) throw new Error('the proxy did not start');
  return { appUrls, proxy, ca: readFileSync(proxy.certFile, 'utf8'), started };
}

/** Stops the proxy, then the app servers (front to back, so no client is sent to a server going away). */
export async function stopFrontEnds(config: Config, log: Logger): Promise<void> {
  await stopProxy(config, log);
  await stopAppServers(config, log);
}
