/**
 * Two starters of one service at once (a test run beside `npm start`, two test runs): one
 * starts it, the other reuses it, and neither stops the other's process.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../testkit/ports';
import { testConfig } from '../../testkit/test-config';
import { brokerAuthStatus, ensureBrokerAuth, stopBrokerAuth } from '../broker-auth-service';
import type { Logger } from '../logger';

describe('starting a service', () => {
  it('twice at the same moment starts it once, and both callers get the running one', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'roomcast-start-lock-'));
    // The service reads its settings from the environment it inherits, as under npm start.
    const settings = { ROOMCAST_DATA_DIR: dataDir, ROOMCAST_BROKER_AUTH_PORT: String(await freePort()) };
    const saved = { ...process.env };
    Object.assign(process.env, settings);
    const config = testConfig(settings);
    const lines: string[] = [];
    const log: Logger = { info: (m) => lines.push(m), warn: (m) => lines.push(m) };
    try {
      await Promise.all([ensureBrokerAuth(config, log), ensureBrokerAuth(config, log)]);
      const status = await brokerAuthStatus(config);
      expect(status.up).toBe(true);
      expect(lines.filter((l) => l.includes('starting on'))).toHaveLength(1);
      expect(lines.filter((l) => l.includes('reusing pid'))).toHaveLength(1);
      expect(readFileSync(path.join(dataDir, 'run', 'broker-auth.pid'), 'utf8').split('\n')[0]).toBe(String(status.pid));
    } finally {
      await stopBrokerAuth(config, log);
      for (const k of Object.keys(settings)) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
