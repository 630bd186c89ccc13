/**
 * infra's public entry: bring the services up, take them down, report on them.
 * Services: PostgreSQL, Redis, Exim (the SMTP relay), the broker-auth HTTP service and the
 * RabbitMQ cluster, on the addresses and ports in `Config`, with all state under
 * `config.dataDir`. On several hosts each runs the share its roles name (ROOMCAST_INFRA_ROLES):
 * `data` the first three, `broker` broker-auth and its RabbitMQ node.
 */
import path from 'node:path';
import type { Config } from '../runtime/config';
import { withStartLock } from './node-process';
import { dataPaths } from './paths';
import { brokerAuthStatus, ensureBrokerAuth, stopBrokerAuth } from './broker-auth-service';
import { ensureExim, eximStatus, stopExim } from './exim';
import type { Logger } from './logger';
import { ensureOsPackages, SERVICE_PACKAGES } from './os-packages';
import { ensurePostgres, postgresStatus, stopPostgres } from './postgres';
import type { ServiceStatus } from './probes';
import { ensureRabbitCluster, rabbitStatus, stopRabbitCluster } from './rabbitmq-cluster';
import { ensureRedis, redisStatus, stopRedis } from './redis';

export type { Logger } from './logger';
export { silentLogger } from './logger';
export type { ServiceStatus } from './probes';
export { ensureOsPackages, MissingOsPackagesError, TEST_PACKAGES } from './os-packages';
export { EximError, ensureExim, eximQueueCount, eximQueueRun, setEximHook, stopExim } from './exim';
export { EXIM_HOOKS, mailHeader, maildirFiles, maildirTag, type EximHook, type MaildirFile } from './exim-files';
export {
  clusterRunningNodes,
  killNode,
  nodeStatus,
  startApp,
  startNode,
  stopApp,
  stopNode,
  type RabbitNodeStatus,
} from './rabbitmq-cluster';

const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`;

/**
 * Brings every service up, reusing whatever already runs; one progress line per step. Two runs
 * at once (two test runs, `npm start` beside `npm test` of the same profile) take turns: each
 * service's own start is checked against its pid file, and a broker cluster started twice at
 * once left nodes running with no pid files, which no later run could tell from strangers.
 */
export async function ensureServices(config: Config, log: Logger): Promise<void> {
  await withStartLock({ name: 'services', pidFile: path.join(dataPaths(config).run, 'services.pid') }, () => startServices(config, log));
}

async function startServices(config: Config, log: Logger): Promise<void> {
  const start = Date.now();
  const step = async (name: string, run: () => Promise<void>): Promise<void> => {
    const t = Date.now();
    await run();
    log.info(`${name} ready (${seconds(t)})`);
  };
  const { roles } = config;
  await step('os packages', () => ensureOsPackages(SERVICE_PACKAGES, log));
  if (roles.includes('data')) {
    // A dependency given by URL on a host without explicit roles lives elsewhere: not ours to run.
    await step('postgres + redis + exim', async () => {
      await Promise.all([
        config.postgres.managed ? ensurePostgres(config, log) : log.info(`postgres: elsewhere (ROOMCAST_DATABASE_URL), not started here`),
        config.redis.managed ? ensureRedis(config, log) : log.info(`redis: elsewhere (ROOMCAST_REDIS_URL), not started here`),
        ensureExim(config, log),
      ]);
    });
  }
  if (roles.includes('broker')) {
    await step('broker-auth', () => ensureBrokerAuth(config, log));
    const share = config.rabbitmq.longNames ? 'this host\'s node' : `${config.rabbitmq.nodes.length} nodes`;
    await step(`rabbitmq (${share})`, () => ensureRabbitCluster(config, log));
  }
  log.info(`services of ${roles.join(', ')} up in ${seconds(start)}`);
}

/** Stops what ensureServices started, found through pid files only. */
export async function stopServices(config: Config, log: Logger): Promise<void> {
  const start = Date.now();
  // RabbitMQ first: its nodes call broker-auth until they are gone.
  await stopRabbitCluster(config, log);
  await Promise.all([stopBrokerAuth(config, log), stopRedis(config, log), stopPostgres(config, log), stopExim(config, log)]);
  log.info(`all services stopped in ${seconds(start)}`);
}

/** Each service of this host's roles (and each of its RabbitMQ nodes) with whether it answers on its port. */
export async function servicesStatus(config: Config): Promise<ServiceStatus[]> {
  const checks: Promise<ServiceStatus | ServiceStatus[]>[] = [];
  if (config.roles.includes('data')) checks.push(postgresStatus(config), redisStatus(config), eximStatus(config));
  if (config.roles.includes('broker')) checks.push(brokerAuthStatus(config), rabbitStatus(config));
  return (await Promise.all(checks)).flat();
}
