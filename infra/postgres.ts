/**
 * roomcast's own PostgreSQL cluster in `.data/postgres`, independent of any system-wide
 * instance: on loopback without a password on one machine, or on the data host's address with
 * the password of ROOMCAST_DATABASE_URL when roomcast spans hosts. As root, every postgres binary runs as the `postgres` OS user,
 * because the server refuses to run as root.
 */
import { appendFileSync, chmodSync, closeSync, existsSync, openSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../runtime/config';
import type { Logger } from './logger';
import { dataPaths, ensureDir } from './paths';
import { isProcessAlive, isRoot, logTail, readPidFile, runChecked, terminate, waitUntil } from './processes';
import { assertPortFree, isPortOpen, type ServiceStatus } from './probes';

/** PostgreSQL could not be set up, started or reached. */
export class PostgresError extends Error {
  override name = 'PostgresError';
  readonly code = 'postgres_failed';
}

const PG_ROOT = '/usr/lib/postgresql';
/** The OS user the server runs as when we are root, and the cluster's superuser role. */
const PG_USER = 'postgres';

function pgPaths(config: Config) {
  const { postgres: dataDir, log } = dataPaths(config);
  return { dataDir, pidFile: path.join(dataDir, 'postmaster.pid'), logFile: path.join(log, 'postgres.log') };
}

/** The bin directory of the highest installed major version. */
function pgBinDir(): string {
  const versions = existsSync(PG_ROOT)
    ? readdirSync(PG_ROOT).filter((v) => /^\d+$/.test(v) && existsSync(path.join(PG_ROOT, v, 'bin', 'pg_ctl')))
    : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new PostgresError(`no PostgreSQL server under ${PG_ROOT}. Run as root: apt-get install -y postgresql`);
  return path.join(PG_ROOT, newest, 'bin');
}

/** Runs a postgres binary, as the `postgres` OS user when we are root. */
function runPg(bin: string, args: string[], cwd: string): Promise<string> {
  const exe = path.join(pgBinDir(), bin);
  return isRoot() ? runChecked('runuser', ['-u', PG_USER, '--', exe, ...args], { cwd }) : runChecked(exe, args, { cwd });
}

/** Hands files to the postgres OS user; not needed when we are not root (we own them). */
async function giveToPgUser(...files: string[]): Promise<void> {
  if (isRoot()) await runChecked('chown', ['-R', `${PG_USER}:${PG_USER}`, ...files]);
}

/**
 * The repository may live under a private directory (e.g. /root/...), which the postgres
 * OS user cannot walk through. Grant search-only permission (o+x, not listing) on the way.
 */
function letPgUserReach(dir: string, log: Logger): void {
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    const mode = statSync(d).mode;
    if ((mode & 0o001) === 0) {
      chmodSync(d, (mode & 0o7777) | 0o001);
      log.warn(`postgres: granted o+x on ${d} so the ${PG_USER} OS user can reach ${dir}`);
    }
    if (d === path.dirname(d)) break;
  }
}

/** initdb into a scratch directory renamed into place, so a failed init never looks initialised. */
async function initCluster(config: Config, log: Logger): Promise<void> {
  const { dataDir } = pgPaths(config);
  if (existsSync(dataDir)) {
    if (readdirSync(dataDir).length > 0) {
      throw new PostgresError(`${dataDir} is not empty but holds no PG_VERSION; move it away and run again`);
    }
    rmSync(dataDir, { recursive: true });
  }
  const scratch = `${dataDir}.initdb`;
  rmSync(scratch, { recursive: true, force: true });
  ensureDir(scratch, 0o700);
  await giveToPgUser(scratch);
  log.info(`postgres: initdb ${dataDir}`);
  // --no-sync: a dev/test cluster lost to a power cut right after creation is simply re-created.
  await runPg('initdb', ['-D', scratch, '-U', PG_USER, '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'], scratch);
  appendFileSync(path.join(scratch, 'postgresql.conf'), "\ninclude 'roomcast.conf'\n");
  await giveToPgUser(scratch);
  renameSync(scratch, dataDir);
}

const quoteConf = (value: string): string => `'${value.replaceAll("'", "''")}'`;

/**
 * Who may connect how, rewritten before every start. The socket in the data dir is infra's own
 * superuser door. Trust over TCP only while the server listens on loopback without a password;
 * with a password (required on any other address: runtime/config.ts) every TCP login gives it.
 */
function writeAccessRules(config: Config, dataDir: string): void {
  const tcp = config.postgres.password === null ? 'host all all 127.0.0.1/32 trust' : 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256';
  writeFileSync(path.join(dataDir, 'pg_hba.conf'), `local all all trust\n${tcp}\n`);
}

/** Rewritten before every start so a changed port or moved data dir takes effect. */
function writeSettings(config: Config, dataDir: string): void {
  writeAccessRules(config, dataDir);
  const lines = [
    '# Written by infra/postgres.ts before each start; edit that file, not this one.',
    `listen_addresses = ${quoteConf(config.postgres.host)}`,
    `port = ${config.postgres.port}`,
    // Inside the data dir: /var/run/postgresql may be absent and is the system instance's.
    `unix_socket_directories = ${quoteConf(dataDir)}`,
  ];
  writeFileSync(path.join(dataDir, 'roomcast.conf'), `${lines.join('\n')}\n`);
}

/** Runs `fn` with a superuser connection over the data dir's socket; throws when the server does not answer. */
async function withSuperuser<T>(config: Config, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: pgPaths(config).dataDir,
    port: config.postgres.port,
    user: PG_USER,
    database: 'postgres',
    connectionTimeoutMillis: 3000,
  });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function ensureRoleAndDatabase(config: Config, log: Logger): Promise<void> {
  const { user, database, password } = config.postgres;
  await withSuperuser(config, async (client) => {
    const role = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user]);
    if (role.rowCount === 0) {
      log.info(`postgres: creating role ${user}`);
      await client.query(`CREATE ROLE ${client.escapeIdentifier(user)} LOGIN`);
    }
    // The URL's password is the role's, set on every start so a changed secret takes effect.
    await client.query(`ALTER ROLE ${client.escapeIdentifier(user)} PASSWORD ${password === null ? 'NULL' : client.escapeLiteral(password)}`);
    const db = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (db.rowCount === 0) {
      log.info(`postgres: creating database ${database}`);
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)} OWNER ${client.escapeIdentifier(user)}`);
    }
  });
}

/** The postmaster pid when our server process is alive. */
function runningPid(config: Config): number | null {
  const { dataDir, pidFile } = pgPaths(config);
  const pid = readPidFile(pidFile);
  // The postmaster's command line carries `-D <dataDir>`, which tells it from other clusters.
  return pid !== null && isProcessAlive(pid, dataDir) ? pid : null;
}

/** Initialises (once), starts (unless running) and provisions the role and database. */
export async function ensurePostgres(config: Config, log: Logger): Promise<void> {
  const { dataDir, logFile } = pgPaths(config);
  const { port } = config.postgres;
  const pid = runningPid(config);
  if (pid !== null) {
    // Ours, possibly still starting (another `up` or test run launched it): give it time.
    await waitUntil(() => withSuperuser(config, async () => true).catch(() => false), {
      timeoutMs: 60_000,
      intervalMs: 500,
      onTimeout: () =>
        new PostgresError(
          `our postgres (pid ${pid}) does not accept connections on port ${port}; see ${logFile} ` +
            '(after changing ROOMCAST_PG_PORT, run `npm run services -- down` first)',
        ),
    });
    log.info(`postgres: reusing the running server on port ${port}`);
    await ensureRoleAndDatabase(config, log);
    return;
  }
  await assertPortFree(config.postgres.host, port, 'postgres', 'ROOMCAST_PG_PORT');
  ensureDir(path.dirname(logFile));
  if (isRoot()) letPgUserReach(dataDir, log);
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await initCluster(config, log);
  writeSettings(config, dataDir);
  // pg_ctl opens the log as the postgres user, who cannot create files in our log directory.
  closeSync(openSync(logFile, 'a'));
  await giveToPgUser(logFile, path.join(dataDir, 'roomcast.conf'), path.join(dataDir, 'pg_hba.conf'));

  log.info(`postgres: starting on ${config.postgres.host}:${port}`);
  try {
    await runPg('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start'], dataDir);
  } catch (err) {
    throw new PostgresError(`postgres did not start (${(err as Error).message}); see ${logFile}:\n${logTail(logFile)}`);
  }
  await ensureRoleAndDatabase(config, log);
}

/** Fast shutdown (SIGINT: open sessions are cut, data is flushed) of our server, if running. */
export async function stopPostgres(config: Config, log: Logger): Promise<void> {
  const pid = runningPid(config);
  if (pid === null) return;
  log.info(`postgres: stopping pid ${pid}`);
  // SIGTERM would be a "smart" shutdown, waiting forever for a leaked client pool to close.
  await terminate(pid, pgPaths(config).dataDir, { signal: 'SIGINT', graceMs: 30_000, fallbackSignal: 'SIGQUIT' });
}

export async function postgresStatus(config: Config): Promise<ServiceStatus> {
  const { host, port } = config.postgres;
  const pid = runningPid(config);
  const up = pid !== null && (await isPortOpen(host, port));
  return { name: 'postgres', up, endpoint: `${host}:${port}`, pid };
}
