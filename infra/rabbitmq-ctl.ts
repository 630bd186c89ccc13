/**
 * Environments for RabbitMQ's own scripts. We call the scripts in the versioned sbin
 * directory directly: the /usr/sbin wrappers switch to the `rabbitmq` OS user, which could not
 * write to `.data`. Every variable that would otherwise fall back to a system-wide default
 * (/etc/rabbitmq, /var/lib/rabbitmq, epmd on 4369) points into `.data` instead.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import type { Config, RabbitNode } from '../runtime/config';
import { dataPaths, ensureDir } from './paths';
import { runChecked } from './processes';
import { ENABLED_PLUGINS_FILE, nodePaths, sharedPaths } from './rabbitmq-files';

/** RabbitMQ is not installed where Debian puts it, or a node failed to start. */
export class RabbitError extends Error {
  override name = 'RabbitError';
  readonly code = 'rabbitmq_failed';
}

const SERVER_LIB = '/usr/lib/rabbitmq/lib';
const LOOPBACK = '127.0.0.1';
/**
 * Erlang schedulers spin while idle by default, which is right for a dedicated host; three
 * nodes sharing two cores with Postgres and Node would burn a core doing nothing.
 */
const NO_BUSY_WAIT = '+sbwt none +sbwtdcpu none +sbwtdio none';

/** `/usr/lib/rabbitmq/lib/rabbitmq_server-<version>/sbin` of the newest installed version. */
export function sbinDir(): string {
  const dirs = existsSync(SERVER_LIB) ? readdirSync(SERVER_LIB).filter((d) => d.startsWith('rabbitmq_server-')) : [];
  const newest = dirs.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1);
  if (!newest) throw new RabbitError(`no RabbitMQ under ${SERVER_LIB}. Run as root: apt-get install -y rabbitmq-server`);
  return path.join(SERVER_LIB, newest, 'sbin');
}

/**
 * The nodes this host runs: every one on one machine; on several hosts, the one whose address
 * (in ROOMCAST_RABBITMQ_AMQP_URLS) is one of this host's own.
 */
export function localNodes(config: Config): RabbitNode[] {
  if (!config.rabbitmq.longNames) return config.rabbitmq.nodes;
  const own = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address)));
  return config.rabbitmq.nodes.filter((n) => own.has(n.host));
}

/** The address this host's Erlang distribution (nodes and CLI) uses: loopback, or its node's. */
function distAddress(config: Config): string {
  if (!config.rabbitmq.longNames) return LOOPBACK;
  const [mine] = localNodes(config);
  if (!mine) {
    const hosts = config.rabbitmq.nodes.map((n) => n.host).join(', ');
    throw new RabbitError(`none of ROOMCAST_RABBITMQ_AMQP_URLS' hosts (${hosts}) is an address of this host; run the broker role on one of them`);
  }
  return mine.host;
}

/** What both the nodes and the CLI tools need; inherited RABBITMQ_* variables are dropped. */
function baseEnv(config: Config): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RABBITMQ_')));
  const address = distAddress(config);
  return {
    ...inherited,
    HOME: sharedPaths(config).home,
    ERL_EPMD_PORT: String(config.rabbitmq.epmdPort),
    // Our epmd (started by the first node) listens on loopback, and on the node's address when
    // the cluster spans hosts (peers ask it for the node's distribution port).
    ERL_EPMD_ADDRESS: address === LOOPBACK ? LOOPBACK : `${LOOPBACK},${address}`,
    // Nodes named by address (roomcast@10.0.0.11) need Erlang's long names, CLI included.
    ...(config.rabbitmq.longNames ? { RABBITMQ_USE_LONGNAME: 'true' } : {}),
    // Absent on purpose: keeps /etc/rabbitmq/rabbitmq-env.conf from overriding our settings.
    RABBITMQ_CONF_ENV_FILE: path.join(dataPaths(config).rabbitmq, 'rabbitmq-env.conf'),
  };
}

/**
 * A peer that stops answering is declared down after about net_ticktime; until then RabbitMQ
 * waits for it: publishes routed to its queues go unconfirmed and queue declarations (every
 * browser's SUBSCRIBE) block. Erlang's 60 s default left a cut host's clients unserved for over
 * a minute in the multi-host test; 10 s detects a real partition in 8-13 s, while a node must be
 * unresponsive that long to be taken for one. Nodes on one machine do not partition: default there.
 */
const MULTI_HOST_TICKTIME_S = 10;

/** Erlang distribution listens on that address only (loopback on one machine), with the tick time of the layout. */
function distArgs(config: Config): string {
  const iface = `-kernel inet_dist_use_interface {${distAddress(config).split('.').join(',')}}`;
  return config.rabbitmq.longNames ? `${iface} -kernel net_ticktime ${MULTI_HOST_TICKTIME_S}` : iface;
}

export function nodeEnv(config: Config, node: RabbitNode): NodeJS.ProcessEnv {
  const p = nodePaths(config, node);
  return {
    ...baseEnv(config),
    RABBITMQ_NODENAME: node.name,
    // With its `.conf` extension: 3.10 logs "config file(s): <this path>" (pre-3.8 wanted none).
    RABBITMQ_CONFIG_FILE: p.configFile,
    // Absent on purpose, like RABBITMQ_CONF_ENV_FILE: nothing from /etc/rabbitmq applies.
    RABBITMQ_ADVANCED_CONFIG_FILE: path.join(p.dir, 'advanced.config'),
    RABBITMQ_MNESIA_BASE: p.mnesiaBase,
    RABBITMQ_LOG_BASE: p.logBase,
    RABBITMQ_PID_FILE: p.pidFile,
    RABBITMQ_DIST_PORT: String(node.distPort),
    RABBITMQ_ENABLED_PLUGINS_FILE: ENABLED_PLUGINS_FILE,
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: `${distArgs(config)} ${NO_BUSY_WAIT}`,
  };
}

/**
 * The CLI tools' own Erlang distribution port defaults to 35672-35682, a range a user may
 * well configure for listeners. Port 0 lets the kernel pick a free ephemeral one, which our
 * default ports (all below the ephemeral range) never are.
 */
function ctlEnv(config: Config): NodeJS.ProcessEnv {
  return {
    ...baseEnv(config),
    RABBITMQ_CTL_DIST_PORT_MIN: '0',
    RABBITMQ_CTL_DIST_PORT_MAX: '0',
    RABBITMQ_CTL_ERL_ARGS: distArgs(config),
  };
}

/** `rabbitmqctl -n <node> <args>`; throws CommandError with the tool's message on failure. */
export function rabbitmqctl(config: Config, node: RabbitNode, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  return runChecked(path.join(sbinDir(), 'rabbitmqctl'), ['-n', node.name, ...args], {
    env: ctlEnv(config),
    timeoutMs,
  });
}

/**
 * Starts the node's start script detached (it outlives the CLI) and returns it. The script
 * stays as a small shell parent of the Erlang VM; the VM writes its own pid to the pid file.
 */
export function spawnNode(config: Config, node: RabbitNode): ReturnType<typeof spawn> {
  const p = nodePaths(config, node);
  ensureDir(path.dirname(p.pidFile));
  ensureDir(p.logBase);
  const out = openSync(p.stdoutLog, 'a');
  try {
    const child = spawn(path.join(sbinDir(), 'rabbitmq-server'), [], {
      env: nodeEnv(config, node),
      cwd: p.dir,
      detached: true,
      stdio: ['ignore', out, out],
    });
    child.unref();
    return child;
  } finally {
    closeSync(out);
  }
}

/** Whether the process in the node's pid file is our Erlang VM (its command line names our HOME). */
export const serverProgramHint = (config: Config): string => sharedPaths(config).home;
