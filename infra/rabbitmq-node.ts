/**
 * One RabbitMQ node's lifecycle: find its VM, start it (or just its app) and wait for the
 * boot, check its listeners, stop it. rabbitmq-cluster.ts builds the cluster from these.
 */
import type { ChildProcess } from 'node:child_process';
import type { Config, RabbitNode } from '../runtime/config';
import type { Logger } from './logger';
import { isProcessAlive, logTail, readPidFile, sleep, terminate, waitUntil } from './processes';
import { assertPortFree, isPortOpen } from './probes';
import { RabbitError, rabbitmqctl, serverProgramHint, spawnNode } from './rabbitmq-ctl';
import { nodePaths, writeNodeConfig } from './rabbitmq-files';

export const BOOT_TIMEOUT_MS = 180_000;

/** The node with 1-based `index`: `roomcast-<index>@localhost`, or the index-th of ROOMCAST_RABBITMQ_AMQP_URLS. */
export function nodeAt(config: Config, index: number): RabbitNode {
  const node = config.rabbitmq.nodes.find((n) => n.index === index);
  if (!node) throw new RabbitError(`no RabbitMQ node ${index}; nodes are 1..${config.rabbitmq.nodes.length}`);
  return node;
}

/** The pid of the node's Erlang VM when it is alive. */
export function nodePid(config: Config, node: RabbitNode): number | null {
  const pid = readPidFile(nodePaths(config, node).pidFile);
  return pid !== null && isProcessAlive(pid, serverProgramHint(config)) ? pid : null;
}

/**
 * The node's client-facing listeners (all close on stop_app), each with the infix of the
 * ROOMCAST_RABBITMQ_<infix>_PORT_BASE setting that moves it.
 */
const listeners = (n: RabbitNode): [number, string][] => [
  [n.amqpPort, 'AMQP'],
  [n.stompPort, 'STOMP'],
  [n.webStompPort, 'WEB_STOMP'],
  [n.prometheusPort, 'PROMETHEUS'],
  [n.managementPort, 'MANAGEMENT'],
];
const listenerPorts = (n: RabbitNode): number[] => listeners(n).map(([port]) => port);

export async function closedPorts(node: RabbitNode): Promise<number[]> {
  const open = await Promise.all(listenerPorts(node).map((p) => isPortOpen(node.host, p)));
  return listenerPorts(node).filter((_, i) => !open[i]);
}

/**
 * A listener that fails to bind (EADDRINUSE) does not fail the boot: the node runs and
 * cluster_status lists it, without that port. Restarting the app retries the binds once.
 */
export async function ensureListening(config: Config, node: RabbitNode, log: Logger): Promise<void> {
  const closed = await closedPorts(node);
  if (closed.length === 0) return;
  log.warn(`rabbitmq: ${node.name} is not listening on ${closed.join(', ')}; restarting its app`);
  await rabbitmqctl(config, node, ['stop_app']);
  await rabbitmqctl(config, node, ['start_app'], BOOT_TIMEOUT_MS);
  const still = await closedPorts(node);
  if (still.length > 0) {
    throw new RabbitError(`${node.name} cannot listen on ${still.join(', ')}; find the holder with: ss -ltnp | grep -E ':(${still.join('|')})'`);
  }
}

function bootFailure(config: Config, node: RabbitNode, what: string): RabbitError {
  const p = nodePaths(config, node);
  return new RabbitError(`${node.name} ${what}; see ${p.logFile} and ${p.stdoutLog}:\n${logTail(p.stdoutLog)}`);
}

/**
 * Waits for the AMQP listener (a cheap probe that also notices the start script dying), then
 * for `await_startup`, which returns once the plugins are up too.
 */
async function awaitBooted(config: Config, node: RabbitNode, child: ChildProcess): Promise<void> {
  let exited = false;
  child.once('exit', () => (exited = true));
  await waitUntil(
    () => {
      if (exited) throw bootFailure(config, node, 'exited while booting');
      return isPortOpen(node.host, node.amqpPort);
    },
    { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 250, onTimeout: () => bootFailure(config, node, 'did not open its AMQP port') },
  );
  await rabbitmqctl(config, node, ['await_startup'], BOOT_TIMEOUT_MS);
}

/**
 * Starts the node's VM, or just its app when the VM runs with the app stopped. A VM whose
 * app cannot start again (e.g. it crashed and left mnesia running) is restarted whole.
 */
export async function bringUp(config: Config, node: RabbitNode, log: Logger): Promise<void> {
  if (nodePid(config, node) !== null) {
    // Listeners close with the app, so a live VM without its AMQP port had `stop_app`.
    if (await isPortOpen(node.host, node.amqpPort)) return;
    log.info(`rabbitmq: ${node.name} runs with its app stopped; start_app`);
    try {
      await rabbitmqctl(config, node, ['start_app'], BOOT_TIMEOUT_MS);
      return;
    } catch (err) {
      log.warn(`rabbitmq: start_app on ${node.name} failed (${(err as Error).message.split('\n')[0]}); restarting the node`);
      await stopNodeProcess(config, node, log);
    }
  }
  const ports = [...listeners(node), [node.distPort, 'DIST'] as const];
  // A node killed a moment ago may still answer on its ports while the kernel tears it down.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await Promise.all(ports.map(([port]) => isPortOpen(node.host, port)))).some(Boolean)) await sleep(200);
  for (const [port, infix] of ports) {
    await assertPortFree(node.host, port, node.name, `ROOMCAST_RABBITMQ_${infix}_PORT_BASE`);
  }
  writeNodeConfig(config, node);
  log.info(`rabbitmq: starting ${node.name} (amqp ${node.amqpPort})`);
  try {
    await awaitBooted(config, node, spawnNode(config, node));
  } catch (err) {
    // RabbitMQ 3.10: a node that compares feature flags with a peer still booting can read the
    // peer's half-built registry and stop with `incompatible_feature_flags` (seen when all
    // three restart together). The peer is fine a moment later; one more boot succeeds.
    if (!logTail(nodePaths(config, node).stdoutLog, 40).includes('incompatible_feature_flags')) throw err;
    log.warn(`rabbitmq: ${node.name} met a peer still booting (incompatible_feature_flags); booting it again`);
    await sleep(2000);
    await awaitBooted(config, node, spawnNode(config, node));
  }
}

/** SIGTERM to the VM (RabbitMQ shuts down cleanly), SIGKILL after a minute. */
export async function stopNodeProcess(config: Config, node: RabbitNode, log: Logger): Promise<void> {
  const pid = nodePid(config, node);
  if (pid === null) return;
  log.info(`rabbitmq: stopping ${node.name} (pid ${pid})`);
  if ((await terminate(pid, serverProgramHint(config), { graceMs: 60_000 })) === 'forced') {
    log.warn(`rabbitmq: ${node.name} ignored SIGTERM for 60 s and was killed`);
  }
}
