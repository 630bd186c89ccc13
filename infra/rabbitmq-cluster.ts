/**
 * The RabbitMQ cluster, clustered with node 1. On one machine infra runs all
 * `config.rabbitmq.nodes`: the first boot forms the cluster (start node 1, then the others in
 * parallel, then join them to node 1 one at a time); later boots start every node at once,
 * since each waits for its peers' tables. On several hosts each broker host runs its own node
 * and joins node 1 on its first boot. The node controls below are also what the failure tests use.
 */
import { existsSync, writeFileSync } from 'node:fs';
import type { Config, RabbitNode } from '../runtime/config';
import { silentLogger, type Logger } from './logger';
import { dataPaths } from './paths';
import { runCommand, signalIfAlive, waitForExit, waitUntil } from './processes';
import { isPortOpen, type ServiceStatus } from './probes';
import { localNodes, RabbitError, rabbitmqctl, serverProgramHint } from './rabbitmq-ctl';
import { ensureCookie, hasNodeData, nodePaths, writeDefinitions } from './rabbitmq-files';
import { BOOT_TIMEOUT_MS, bringUp, closedPorts, ensureListening, nodeAt, nodePid, stopNodeProcess } from './rabbitmq-node';

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

/** Tries at joining node 1 from a host (see joinFromHost). */
const HOST_JOIN_ATTEMPTS = 4;

/**
 * A host's node joining `target`. Hosts boot together, so two nodes may join node 1 at the same
 * moment, and Mnesia can then refuse to start one of them (seen once in the multi-host run:
 * start_app failing with `{mnesia_app, start}`). The node then goes back to a blank state
 * (force_reset, and `target` forgets it) and joins again after a random pause, so two nodes
 * that collided do not collide again.
 */
async function joinFromHost(config: Config, node: RabbitNode, target: RabbitNode, log: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await joinSeed(config, [node], target, log);
      return;
    } catch (err) {
      if (attempt >= HOST_JOIN_ATTEMPTS) throw err;
      log.warn(`rabbitmq: ${node.name} could not join ${target.name} (${(err as Error).message.split('\n')[0]?.slice(0, 300)}); starting over`);
      await new Promise((r) => setTimeout(r, 2000 + Math.random() * 3000 * attempt));
      await rabbitmqctl(config, node, ['stop_app']).catch(() => undefined);
      await rabbitmqctl(config, node, ['force_reset']).catch(() => undefined);
      await rabbitmqctl(config, target, ['forget_cluster_node', node.name]).catch(() => undefined);
    }
  }
}

/**
 * Names of the cluster's nodes whose app runs, as seen by the first node that can answer
 * (cluster_status needs the app running on the node asked); [] when no node runs.
 */
export async function clusterRunningNodes(config: Config): Promise<string[]> {
  let lastError: unknown;
  for (const node of config.rabbitmq.nodes) {
    if (nodePid(config, node) === null || !(await isPortOpen(node.host, node.amqpPort))) continue;
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

async function allRunning(config: Config, nodes: RabbitNode[]): Promise<boolean> {
  const running = await clusterRunningNodes(config).catch((): string[] => []);
  return nodes.every((n) => running.includes(n.name));
}

/** Brings this host's share of the cluster up (forming it on first boot); running nodes are reused. */
export async function ensureRabbitCluster(config: Config, log: Logger): Promise<void> {
  const [seed] = config.rabbitmq.nodes;
  if (!seed) throw new RabbitError('config.rabbitmq.nodes is empty');
  ensureCookie(config);
  if (config.rabbitmq.longNames) {
    await ensureHostNode(config, seed, log);
    return;
  }
  const nodes = config.rabbitmq.nodes;
  const allListening = async (): Promise<boolean> => (await Promise.all(nodes.map(closedPorts))).every((c) => c.length === 0);
  if (nodes.every((n) => nodePid(config, n) !== null) && (await allListening()) && (await allRunning(config, nodes))) {
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
  await waitUntil(() => allRunning(config, nodes), {
    timeoutMs: 60_000,
    intervalMs: 1000,
    onTimeout: () => new RabbitError(`cluster_status does not list all ${nodes.length} nodes as running`),
  });
  for (const n of nodes) await ensureListening(config, n, log);
}

/**
 * One host of a cluster on several: starts this host's node; on its first boot, a node other
 * than node 1 waits for node 1 to answer and joins it. A member restarting (its data says it
 * joined) rejoins by itself, waiting for its peers' tables. Node 1 without data while other
 * nodes run (its disk replaced or wiped) joins them: booting alone it would form a second
 * cluster beside theirs, and messages published on one would never reach the other.
 */
async function ensureHostNode(config: Config, seed: RabbitNode, log: Logger): Promise<void> {
  const [node] = localNodes(config);
  if (!node) throw new RabbitError(`this host has none of the addresses in ROOMCAST_RABBITMQ_AMQP_URLS (${config.rabbitmq.nodes.map((n) => n.host).join(', ')})`);
  writeDefinitions(config);
  let target = seed;
  let joined = existsSync(nodePaths(config, node).joinedMarker);
  if (node === seed) {
    const peers = config.rabbitmq.nodes.filter((n) => n !== node);
    const running = hasNodeData(config, node) ? [] : await Promise.all(peers.map((p) => isPortOpen(p.host, p.amqpPort)));
    const peer = peers.find((_, i) => running[i]);
    if (peer) target = peer;
    else joined = true;
  }
  await bringUp(config, node, log);
  if (!joined) {
    log.info(`rabbitmq: ${node.name} waits for ${target.name} to join it`);
    await waitUntil(() => rabbitmqctl(config, target, ['await_startup'], 10_000).then(() => true, () => false), {
      timeoutMs: BOOT_TIMEOUT_MS,
      intervalMs: 2000,
      onTimeout: () => new RabbitError(`${target.name} does not answer; start the broker role on ${target.host} first`),
    });
    await joinFromHost(config, node, target, log);
  }
  await waitUntil(() => allRunning(config, [node]), {
    timeoutMs: 60_000,
    intervalMs: 1000,
    onTimeout: () => new RabbitError(`cluster_status does not list ${node.name} as running`),
  });
  await ensureListening(config, node, log);
}

/** Starts one node (after stopNode/killNode) and waits until it is back in the cluster. */
export async function startNode(config: Config, index: number, log: Logger = silentLogger): Promise<void> {
  const node = nodeAt(config, index);
  ensureCookie(config);
  // Always from the current template: a node imports the file at boot, and an old one would
  // take back what changed since (a tag of the server's user, a policy).
  writeDefinitions(config);
  await bringUp(config, node, log);
  await ensureListening(config, node, log);
}

/** Graceful stop: SIGTERM to the VM (RabbitMQ shuts down cleanly), SIGKILL after a minute. */
export async function stopNode(config: Config, index: number, log: Logger = silentLogger): Promise<void> {
  await stopNodeProcess(config, nodeAt(config, index), log);
}

/** Simulates a crash: SIGKILL, no shutdown at all. */
export async function killNode(config: Config, index: number): Promise<void> {
  const node = nodeAt(config, index);
  const pid = nodePid(config, node);
  if (pid === null) throw new RabbitError(`${node.name} is not running`);
  signalIfAlive(pid, 'SIGKILL');
  await waitForExit(pid, serverProgramHint(config), 10_000);
}

/**
 * Stops the RabbitMQ app but keeps the VM: clients see the broker down, and startApp brings it
 * back in about a second. stop_app itself takes ~5 s in 3.10 (the management agent's shutdown
 * waits for a stats timer); killNode is the instant way down.
 */
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
    localNodes(config).map(async (n) => {
      const pid = nodePid(config, n);
      const closed = await closedPorts(n);
      return { index: n.index, name: n.name, amqpPort: n.amqpPort, pid, closedPorts: closed, running: pid !== null && closed.length === 0 };
    }),
  );
}

export async function rabbitStatus(config: Config): Promise<ServiceStatus[]> {
  const statuses = await nodeStatus(config);
  return statuses.map((s) => ({
    name: `rabbitmq ${s.name}`,
    up: s.running,
    endpoint: `${nodeAt(config, s.index).host}:${s.amqpPort}`,
    pid: s.pid,
  }));
}

/** Stops every node of this host in parallel, then our epmd (never the system one on 4369). */
export async function stopRabbitCluster(config: Config, log: Logger): Promise<void> {
  await Promise.all(localNodes(config).map((n) => stopNode(config, n.index, log)));
  const port = config.rabbitmq.epmdPort;
  if (!(await isPortOpen('127.0.0.1', port))) return;
  const res = await runCommand('epmd', ['-port', String(port), '-kill']);
  if (res.exitCode !== 0) log.warn(`rabbitmq: epmd on port ${port} did not stop: ${res.stdout.trim() || res.stderr.trim()}`);
}
