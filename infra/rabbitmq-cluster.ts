/**
 * The local RabbitMQ cluster: `config.rabbitmq.nodes` nodes on one machine, clustered with
 * node 1. The first boot forms the cluster (start node 1, start the others, join them one by
 * one); later boots start every node at once, since each waits for its peers' tables.
 * The node controls below are also what the failure tests use.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import type { Config, RabbitNode } from '../shared/config';
import { silentLogger, type Logger } from './logger';
import { dataPaths } from './paths';
import { isProcessAlive, logTail, readPidFile, runCommand, terminate, waitForExit, waitUntil } from './processes';
import { isPortOpen, type ServiceStatus } from './probes';
import { RabbitError, rabbitmqctl, serverProgramHint, spawnNode } from './rabbitmq-ctl';
import { ensureCookie, hasNodeData, nodePaths, sharedPaths, writeDefinitions, writeNodeConfig } from './rabbitmq-files';

const HOST = '127.0.0.1';
const BOOT_TIMEOUT_MS = 180_000;

/** The node with 1-based `index`, as in its name `roomcast-<index>@localhost`. */
function nodeAt(config: Config, index: number): RabbitNode {
  const node = config.rabbitmq.nodes.find((n) => n.index === index);
  if (!node) throw new RabbitError(`no RabbitMQ node ${index}; nodes are 1..${config.rabbitmq.nodes.length}`);
  return node;
}

/** The pid of the node's Erlang VM when it is alive. */
function nodePid(config: Config, node: RabbitNode): number | null {
  const pid = readPidFile(nodePaths(config, node).pidFile);
  return pid !== null && isProcessAlive(pid, serverProgramHint(config)) ? pid : null;
}

/** The node's client-facing listeners; all of them close on stop_app. */
const listenerPorts = (n: RabbitNode): number[] => [n.amqpPort, n.stompPort, n.webStompPort, n.prometheusPort, n.managementPort];

async function closedPorts(node: RabbitNode): Promise<number[]> {
  const open = await Promise.all(listenerPorts(node).map((p) => isPortOpen(HOST, p)));
  return listenerPorts(node).filter((_, i) => !open[i]);
}

/**
 * A listener that fails to bind (EADDRINUSE) does not fail the boot: the node runs and
 * cluster_status lists it, without that port. Restarting the app retries the binds once.
 */
async function ensureListening(config: Config, node: RabbitNode, log: Logger): Promise<void> {
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
      return isPortOpen(HOST, node.amqpPort);
    },
    { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 250, onTimeout: () => bootFailure(config, node, 'did not open its AMQP port') },
  );
  await rabbitmqctl(config, node, ['await_startup'], BOOT_TIMEOUT_MS);
}

/**
 * Starts the node's VM, or just its app when the VM runs with the app stopped. A VM whose
 * app cannot start again (e.g. it crashed and left mnesia running) is restarted whole.
 */
async function bringUp(config: Config, node: RabbitNode, log: Logger): Promise<void> {
  if (nodePid(config, node) !== null) {
    // Listeners close with the app, so a live VM without its AMQP port had `stop_app`.
    if (await isPortOpen(HOST, node.amqpPort)) return;
    log.info(`rabbitmq: ${node.name} runs with its app stopped; start_app`);
    try {
      await rabbitmqctl(config, node, ['start_app'], BOOT_TIMEOUT_MS);
      return;
    } catch (err) {
      log.warn(`rabbitmq: start_app on ${node.name} failed (${(err as Error).message.split('\n')[0]}); restarting the node`);
      await stopNode(config, node.index, log);
    }
  }
  writeNodeConfig(config, node);
  log.info(`rabbitmq: starting ${node.name} (amqp ${node.amqpPort})`);
  await awaitBooted(config, node, spawnNode(config, node));
}

/**
 * Joins fresh nodes to `seed`. Only the membership changes (join_cluster) run one at a time;
 * stopping and restarting the apps of the joiners in parallel saves a node boot per joiner.
 * `join_cluster` resets a node first, so this also repairs a node that crashed mid-join.
 */
async function joinSeed(config: Config, joiners: RabbitNode[], seed: RabbitNode, log: Logger): Promise<void> {
  await Promise.all(joiners.map((n) => rabbitmqctl(config, n, ['stop_app'])));
  for (const n of joiners) {
    log.info(`rabbitmq: ${n.name} joins ${seed.name}`);
    await rabbitmqctl(config, n, ['join_cluster', seed.name]);
  }
  await Promise.all(
    joiners.map(async (n) => {
      await rabbitmqctl(config, n, ['start_app'], BOOT_TIMEOUT_MS);
      writeFileSync(nodePaths(config, n).joinedMarker, `${seed.name}\n`);
    }),
  );
}

/**
 * Names of the cluster's nodes whose app runs, as seen by the first node that can answer
 * (cluster_status needs the app running on the node asked); [] when no node runs.
 */
export async function clusterRunningNodes(config: Config): Promise<string[]> {
  let lastError: unknown;
  for (const node of config.rabbitmq.nodes) {
    if (nodePid(config, node) === null || !(await isPortOpen(HOST, node.amqpPort))) continue;
    try {
      const out = await rabbitmqctl(config, node, ['cluster_status', '--formatter', 'json']);
      return (JSON.parse(out) as { running_nodes?: string[] }).running_nodes ?? [];
    } catch (err) {
      lastError = err;
    }
  }
  if (lastError) throw lastError;
  return [];
}

async function allRunning(config: Config): Promise<boolean> {
  const running = await clusterRunningNodes(config).catch((): string[] => []);
  return config.rabbitmq.nodes.every((n) => running.includes(n.name));
}

/** Brings the whole cluster up (forming it on first boot); running nodes are reused. */
export async function ensureRabbitCluster(config: Config, log: Logger): Promise<void> {
  const nodes = config.rabbitmq.nodes;
  const [seed] = nodes;
  if (!seed) throw new RabbitError('config.rabbitmq.nodes is empty');
  ensureCookie(config);
  const allListening = async (): Promise<boolean> => (await Promise.all(nodes.map(closedPorts))).every((c) => c.length === 0);
  if (nodes.every((n) => nodePid(config, n) !== null) && (await allListening()) && (await allRunning(config))) {
    log.info(`rabbitmq: reusing the running ${nodes.length}-node cluster`);
    return;
  }
  writeDefinitions(config);
  const members = nodes.filter((n) => (n === seed ? hasNodeData(config, n) : existsSync(nodePaths(config, n).joinedMarker)));
  if (members.length > 0 && !members.includes(seed)) {
    throw new RabbitError(
      `${seed.name} lost its data while other nodes remember the cluster; ` +
        `run \`npm run services -- down\`, delete ${dataPaths(config).rabbitmq} and run up again`,
    );
  }
  const joiners = nodes.filter((n) => !members.includes(n) && n !== seed);
  // First boot: node 1 alone. Later boots: all members together, or they would wait on each other.
  await Promise.all((members.length > 0 ? members : [seed]).map((n) => bringUp(config, n, log)));
  if (joiners.length > 0) {
    await Promise.all(joiners.map((n) => bringUp(config, n, log)));
    await joinSeed(config, joiners, seed, log);
  }
  await waitUntil(() => allRunning(config), {
    timeoutMs: 60_000,
    intervalMs: 1000,
    onTimeout: () => new RabbitError(`cluster_status does not list all ${nodes.length} nodes as running`),
  });
  for (const n of nodes) await ensureListening(config, n, log);
}

/** Starts one node (after stopNode/killNode) and waits until it is back in the cluster. */
export async function startNode(config: Config, index: number, log: Logger = silentLogger): Promise<void> {
  const node = nodeAt(config, index);
  ensureCookie(config);
  if (!existsSync(sharedPaths(config).definitionsFile)) writeDefinitions(config);
  await bringUp(config, node, log);
  await ensureListening(config, node, log);
}

/** Graceful stop: SIGTERM to the VM (RabbitMQ shuts down cleanly), SIGKILL after a minute. */
export async function stopNode(config: Config, index: number, log: Logger = silentLogger): Promise<void> {
  const node = nodeAt(config, index);
  const pid = nodePid(config, node);
  if (pid === null) return;
  log.info(`rabbitmq: stopping ${node.name} (pid ${pid})`);
  if ((await terminate(pid, serverProgramHint(config), { graceMs: 60_000 })) === 'forced') {
    log.warn(`rabbitmq: ${node.name} ignored SIGTERM for 60 s and was killed`);
  }
}

/** Simulates a crash: SIGKILL, no shutdown at all. */
export async function killNode(config: Config, index: number): Promise<void> {
  const node = nodeAt(config, index);
  const pid = nodePid(config, node);
  if (pid === null) throw new RabbitError(`${node.name} is not running`);
  process.kill(pid, 'SIGKILL');
  await waitForExit(pid, serverProgramHint(config), 10_000);
}

/** Stops the RabbitMQ app but keeps the VM: the broker is "down" and comes back in seconds. */
export async function stopApp(config: Config, index: number): Promise<void> {
  await rabbitmqctl(config, nodeAt(config, index), ['stop_app']);
}

export async function startApp(config: Config, index: number): Promise<void> {
  await rabbitmqctl(config, nodeAt(config, index), ['start_app'], BOOT_TIMEOUT_MS);
}

export interface RabbitNodeStatus {
  index: number;
  name: string;
  amqpPort: number;
  /** The Erlang VM's pid when it is alive. */
  pid: number | null;
  /** Listeners (AMQP, STOMP, Web-STOMP, Prometheus, management) not accepting connections. */
  closedPorts: number[];
  /** VM alive and every listener open; false after stop_app, which closes the listeners. */
  running: boolean;
}

/** Cheap per-node view (no CLI call): is the VM alive, are its listeners open. */
export function nodeStatus(config: Config): Promise<RabbitNodeStatus[]> {
  return Promise.all(
    config.rabbitmq.nodes.map(async (n) => {
      const pid = nodePid(config, n);
      const closed = await closedPorts(n);
      return { index: n.index, name: n.name, amqpPort: n.amqpPort, pid, closedPorts: closed, running: pid !== null && closed.length === 0 };
    }),
  );
}

export async function rabbitStatus(config: Config): Promise<ServiceStatus[]> {
  return (await nodeStatus(config)).map((s) => ({
    name: `rabbitmq ${s.name}`,
    up: s.running,
    endpoint: `${HOST}:${s.amqpPort}`,
    pid: s.pid,
  }));
}

/** Stops every node in parallel, then our epmd (never the system one on 4369). */
export async function stopRabbitCluster(config: Config, log: Logger): Promise<void> {
  await Promise.all(config.rabbitmq.nodes.map((n) => stopNode(config, n.index, log)));
  const port = config.rabbitmq.epmdPort;
  if (!(await isPortOpen(HOST, port))) return;
  const res = await runCommand('epmd', ['-port', String(port), '-kill']);
  if (res.exitCode !== 0) log.warn(`rabbitmq: epmd on port ${port} did not stop: ${res.stdout.trim() || res.stderr.trim()}`);
}
