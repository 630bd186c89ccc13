/**
 * Where each service keeps its data, logs and pid files: everything under `config.dataDir`,
 * so one `rm -rf .data` after `down` resets the whole local environment.
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../runtime/config';

export interface DataPaths {
  root: string;
  run: string;
  log: string;
  postgres: string;
  redis: string;
  rabbitmq: string;
  /** Exim's configuration and spool (its logs are under `log/exim`). */
  exim: string;
  /** Mail delivered in development and tests: the Maildir `mail/maildir`. */
  mail: string;
}

export function dataPaths(config: Config): DataPaths {
  const root = config.dataDir;
  return {
    root,
    run: path.join(root, 'run'),
    log: path.join(root, 'log'),
    postgres: path.join(root, 'postgres'),
    redis: path.join(root, 'redis'),
    rabbitmq: path.join(root, 'rabbitmq'),
    exim: path.join(root, 'exim'),
    mail: path.join(root, 'mail'),
  };
}

/** Creates the directory (and parents) if absent; returns it for chaining. */
export function ensureDir(dir: string, mode = 0o755): string {
  mkdirSync(dir, { recursive: true, mode });
  return dir;
}

/**
 * A service that drops root for its own OS user (postgres, Debian-exim) must walk from `/` to
 * its files, and the repository may live under a private directory (e.g. /root/...). Grants
 * search-only permission (o+x, not listing) on each directory above `dir` that lacks it.
 */
export function letOthersReach(dir: string, onGrant: (dir: string) => void): void {
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    const mode = statSync(d).mode;
    if ((mode & 0o001) === 0) {
      chmodSync(d, (mode & 0o7777) | 0o001);
      onGrant(d);
    }
    if (d === path.dirname(d)) break;
  }
}
