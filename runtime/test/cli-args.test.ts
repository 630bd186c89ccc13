import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../config';

/** Runs one of the project's scripts the way npm does, and returns how it ended. */
function run(script: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const tsx = path.join(repoRoot, 'node_modules', '.bin', 'tsx');
  const r = spawnSync(tsx, [path.join(repoRoot, script), ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('command-line scripts', () => {
  it('print their usage for --help and exit 0', () => {
    const r = run('bench/run.ts', ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('npm run bench -- [options]');
    expect(r.stdout).toContain('--scenario');
  });

  it('refuse an unknown option or a bad value with one line and the usage, exit 2, before starting anything', () => {
    for (const [script, args, message] of [
      ['bench/run.ts', ['--bogus'], "Unknown option '--bogus'"],
      ['bench/run.ts', ['--scenario', 'nope'], '--scenario must be one of'],
      ['e2e/chaos/chaos-run.ts', ['--rooms', '0'], '--rooms must be an integer from 1 to 50, got 0'],
    ] as const) {
      const r = run(script, [...args]);
      expect(r.status).toBe(2);
      expect(r.stderr.split('\n')[0]).toContain(message);
      expect(r.stderr).toContain('[options]');
      expect(r.stderr).not.toContain('    at ');
    }
  });
});
