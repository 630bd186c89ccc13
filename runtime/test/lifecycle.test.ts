import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../config';

describe('every long-running process', () => {
  it('refuses a bad setting at start-up with one line naming it, and exit code 1', () => {
    const tsx = path.join(repoRoot, 'node_modules', '.bin', 'tsx');
    for (const [entry, name] of [
      ['server/src/main.ts', 'app server'],
      ['server/src/broker-auth/main.ts', 'broker-auth'],
      ['proxy/src/main.ts', 'proxy'],
    ] as const) {
      const r = spawnSync(tsx, [path.join(repoRoot, entry)], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, ROOMCAST_PG_PORT: 'five' },
      });
      expect(r.status, entry).toBe(1);
      expect(r.stderr.trim(), entry).toMatch(new RegExp(`^roomcast ${name} failed to start: invalid configuration: ROOMCAST_PG_PORT: [^\\n]+$`));
    }
  });
});
