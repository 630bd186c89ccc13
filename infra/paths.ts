/**
 * Where each service keeps its data, logs and pid files: everything under `config.dataDir`,
 * so one `rm -rf .data` after `down` resets the whole local environment.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../runtime/config';

export interface DataPaths {
  root: string;
  run: string;
  log: string;
  postgres: string;
  redis: string;
  rabbitmq: string;
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
  };
}

/** Creates the directory (and parents) if absent; returns it for chaining. */
export function ensureDir(dir: string, mode = 0o755): string {
  mkdirSync(dir, { recursive: true, mode });
  return dir;
}
