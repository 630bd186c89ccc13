/**
 * `npm start` on a machine where the services already run (another checkout's run, the tests):
 * Ctrl-C stops what it started, the app servers and the proxy, and leaves the services up.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../runtime/config';
import { testConfig } from '../../testkit/test-config';
import { appServersStatus } from '../app-servers';
import { servicesStatus } from '../index';
import { proxyStatus } from '../proxy-service';

describe('npm start', () => {
  it('on Ctrl-C stops its app servers and proxy, and leaves services it found running up', async () => {
    const config = testConfig();
    expect((await servicesStatus(config)).every((s) => s.up)).toBe(true);
    const start = spawn(path.join(repoRoot, 'node_modules', '.bin', 'tsx'), [path.join(repoRoot, 'infra/cli.ts'), 'start'], {
      env: { ...process.env, ROOMCAST_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    start.stdout.on('data', (d: Buffer) => (output += d.toString()));
    start.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = once(start, 'exit');
    await expect.poll(() => output, { timeout: 90_000, interval: 200 }).toContain('running; Ctrl-C');
    expect((await appServersStatus(config)).every((s) => s.up)).toBe(true);
    expect((await proxyStatus(config)).up).toBe(true);

    start.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    expect(code, output).toBe(0);
    expect((await appServersStatus(config)).some((s) => s.up)).toBe(false);
    expect((await proxyStatus(config)).up).toBe(false);
    expect((await servicesStatus(config)).filter((s) => !s.up).map((s) => s.name)).toEqual([]);
  }, 120_000);
});
