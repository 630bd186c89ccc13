/** Facts about the machine a benchmark ran on, printed and stored with the numbers. */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

const version = (cmd: string, args: string[]): string => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0] ?? '';
  } catch {
    return 'unknown';
  }
};

export function machineFacts(): Record<string, string | number> {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    rabbitmq: version('dpkg-query', ['-W', '-f=${Version}', 'rabbitmq-server']),
    postgresql: version('dpkg-query', ['-W', '-f=${Version}', 'postgresql']),
    redis: version('dpkg-query', ['-W', '-f=${Version}', 'redis-server']),
  };
}
