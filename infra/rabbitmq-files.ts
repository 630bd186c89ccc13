/**
 * The files a RabbitMQ node boots from: where they live under `.data/rabbitmq`, the shared
 * Erlang cookie, and the per-run renderings of the committed templates in `rabbitmq/`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, type Config, type RabbitNode } from '../runtime/config';
import { dataPaths, ensureDir } from './paths';

/** A template is missing a value or renders to something RabbitMQ would reject. */
export class RabbitTemplateError extends Error {
  override name = 'RabbitTemplateError';
  readonly code = 'rabbitmq_template_invalid';
}

const TEMPLATE_DIR = path.join(repoRoot, 'rabbitmq');
export const ENABLED_PLUGINS_FILE = path.join(TEMPLATE_DIR, 'enabled_plugins');

export interface NodePaths {
  /** `roomcast-1`: the node name without its host, used for file names. */
  short: string;
  dir: string;
  configFile: string;
  mnesiaBase: string;
  /** Written once the node has joined node 1, so a crash mid-join is retried next boot. */
  joinedMarker: string;
  pidFile: string;
  /** RabbitMQ's own log, `<logBase>/<node name>.log`. */
  logFile: string;
  /** The start script's output: where a node that fails before logging says why. */
  stdoutLog: string;
  logBase: string;
}

export function nodePaths(config: Config, node: RabbitNode): NodePaths {
  const { rabbitmq, run, log } = dataPaths(config);
  const short = node.name.split('@')[0] ?? node.name;
  const dir = path.join(rabbitmq, short);
  return {
    short,
    dir,
    configFile: path.join(dir, 'rabbitmq.conf'),
    mnesiaBase: path.join(dir, 'mnesia'),
    joinedMarker: path.join(dir, 'joined-cluster'),
    pidFile: path.join(run, `${short}.pid`),
    logFile: path.join(log, `${node.name}.log`),
    stdoutLog: path.join(log, `${short}.stdout.log`),
    logBase: log,
  };
}

/** Whether the node has booted before (its database exists). */
export const hasNodeData = (config: Config, node: RabbitNode): boolean =>
  existsSync(path.join(nodePaths(config, node).mnesiaBase, node.name));

/** Shared by all nodes and the CLI tools: HOME holds the Erlang cookie they authenticate with. */
export function sharedPaths(config: Config) {
  const { rabbitmq } = dataPaths(config);
  return { home: path.join(rabbitmq, 'home'), definitionsFile: path.join(rabbitmq, 'definitions.json') };
}

/**
 * The Erlang cookie the nodes and the CLI authenticate with: ROOMCAST_RABBITMQ_COOKIE when set
 * (nodes on several hosts share it), else one made once. Erlang refuses a cookie file that
 * others can read, hence 0400.
 */
export function ensureCookie(config: Config): void {
  const cookie = path.join(ensureDir(sharedPaths(config).home, 0o700), '.erlang.cookie');
  const given = config.rabbitmq.cookie;
  if (given === null) {
    if (!existsSync(cookie)) writeFileSync(cookie, randomBytes(20).toString('hex').toUpperCase(), { mode: 0o400 });
    return;
  }
  if (existsSync(cookie) && readFileSync(cookie, 'utf8') === given) return;
  rmSync(cookie, { force: true });
  writeFileSync(cookie, given, { mode: 0o400 });
}

/** RabbitMQ's internal hash: base64(salt ++ sha256(salt ++ utf8(password))), 4-byte salt. */
export function rabbitPasswordHash(password: string, salt: Buffer = randomBytes(4)): string {
  const digest = createHash('sha256').update(Buffer.concat([salt, Buffer.from(password, 'utf8')])).digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

/** Replaces every `{{KEY}}`; a placeholder left without a value is a bug, not a blank. */
function render(templateName: string, values: Record<string, string>): string {
  const template = readFileSync(path.join(TEMPLATE_DIR, templateName), 'utf8');
  return template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new RabbitTemplateError(`rabbitmq/${templateName}: no value for {{${key}}}`);
    return value;
  });
}

/** Write-then-rename, so a node booting meanwhile never reads half a file. */
function writeAtomically(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/**
 * Renders the vhost, the broker user (password hashed with a fresh salt) and its permissions,
 * and the operator policy expiring unused `stomp-subscription-*` queues
 * (docs/decisions/0007-browser-queues.md). The vhost's `max-queues` is -1, no limit, written out
 * so that a node booting on data from before replaces the old 50,000: with any limit RabbitMQ
 * 3.10 counts every queue of the vhost on each declare, which made connection storms quadratic.
 */
export function writeDefinitions(config: Config): void {
  const json = (s: string): string => JSON.stringify(s).slice(1, -1);
  const text = render('definitions.template.json', {
    BROKER_USER: json(config.rabbitmq.user),
    BROKER_PASSWORD_HASH: rabbitPasswordHash(config.rabbitmq.password),
  });
  JSON.parse(text); // a template edit that breaks JSON fails here, not as an obscure boot error
  writeAtomically(sharedPaths(config).definitionsFile, text);
}

export function writeNodeConfig(config: Config, node: RabbitNode): void {
  const p = nodePaths(config, node);
  ensureDir(p.dir);
  const text = render('rabbitmq.conf.template', {
    NODE_NAME: node.name,
    AMQP_PORT: String(node.amqpPort),
    STOMP_PORT: String(node.stompPort),
    WEB_STOMP_PORT: String(node.webStompPort),
    PROMETHEUS_PORT: String(node.prometheusPort),
    MANAGEMENT_PORT: String(node.managementPort),
    HOST: node.host,
    DEFINITIONS_FILE: sharedPaths(config).definitionsFile,
    BROKER_AUTH_URL: config.brokerAuth.url,
  });
  writeAtomically(p.configFile, text);
}
