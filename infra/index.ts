/**
 * infra's public entry: bring the local services up, take them down, report on them.
 * Services: PostgreSQL, Redis, Exim (the SMTP relay), the broker-auth HTTP service and the
 * RabbitMQ cluster, each on loopback and the ports in `Config`, with all state under
 * `config.dataDir`.
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
  await step('os packages', () => ensureOsPackages(SERVICE_PACKAGES, log));
  // A dependency given by URL lives on another host: it is that host's to run, not ours.
  await step('postgres + redis + exim', async () => {
    await Promise.all([
      config.postgres.managed ? ensurePostgres(config, log) : log.info(`postgres: elsewhere (ROOMCAST_DATABASE_URL), not started here`),
      config.redis.managed ? ensureRedis(config, log) : log.info(`redis: elsewhere (ROOMCAST_REDIS_URL), not started here`),
      ensureExim(config, log),
    ]);
  });
  await step('broker-auth', () => ensureBrokerAuth(config, log));
  await step(`rabbitmq (${config.rabbitmq.nodes.length} nodes)`, () => ensureRabbitCluster(config, log));
  log.info(`all services up in ${seconds(start)}`);
}

/** Stops what ensureServices started, found through pid files only. */
export async function stopServices(config: Config, log: Logger): Promise<void> {
  const start = Date.now();
  // RabbitMQ first: its nodes call broker-auth until they are gone.
  await stopRabbitCluster(config, log);
  await Promise.all([stopBrokerAuth(config, log), stopRedis(config, log), stopPostgres(config, log), stopExim(config, log)]);
  log.info(`all services stopped in ${seconds(start)}`);
}

/** Each service (and each RabbitMQ node) with whether it answers on its port. */
export async function servicesStatus(config: Config): Promise<ServiceStatus[]> {
  const [pg, redis, exim, auth, rabbit] = await Promise.all([
    postgresStatus(config),
    redisStatus(config),
    eximStatus(config),
    brokerAuthStatus(config),
    rabbitStatus(config),
  ]);
  return [pg, redis, exim, auth, ...rabbit];
}
