/**
 * Environments for RabbitMQ's own scripts. We call the scripts in the versioned sbin
 * directory directly: the /usr/sbin wrappers switch to the `rabbitmq` OS user, which could not
 * write to `.data`. Every variable that would otherwise fall back to a system-wide default
 * (/etc/rabbitmq, /var/lib/rabbitmq, epmd on 4369) points into `.data` instead.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
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
const LOOPBACK_DIST = '-kernel inet_dist_use_interface {127,0,0,1}';
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

/** What both the nodes and the CLI tools need; inherited RABBITMQ_* variables are dropped. */
function baseEnv(config: Config): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RABBITMQ_')));
  return {
    ...inherited,
    HOME: sharedPaths(config).home,
    ERL_EPMD_PORT: String(config.rabbitmq.epmdPort),
    // Our epmd (started by the first node) and Erlang distribution listen on loopback only.
    ERL_EPMD_ADDRESS: '127.0.0.1',
    // Absent on purpose: keeps /etc/rabbitmq/rabbitmq-env.conf from overriding our settings.
    RABBITMQ_CONF_ENV_FILE: path.join(dataPaths(config).rabbitmq, 'rabbitmq-env.conf'),
  };
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
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: `${LOOPBACK_DIST} ${NO_BUSY_WAIT}`,
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
    RABBITMQ_CTL_ERL_ARGS: LOOPBACK_DIST,
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
