/**
 * Vitest global set-up: brings up (or reuses) the real services the tests talk to:
 * PostgreSQL, Redis, the broker-auth service and the 3-node RabbitMQ cluster.
 */
import { ensureOsPackages, ensureServices, TEST_PACKAGES } from '../../infra/index';
import { testConfig } from '../../testkit/test-config';

export default async function setup(): Promise<void> {
  const config = testConfig();
  const log = {
    info: (msg: string) => process.stdout.write(`[infra] ${msg}\n`),
    warn: (msg: string) => process.stdout.write(`[infra] warning: ${msg}\n`),
  };
  try {
    await ensureOsPackages(TEST_PACKAGES, log);
    await ensureServices(config, log);
  } catch (err) {
    throw new Error(`the test services could not be started (${(err as Error).message}). Try: npm run services -- up`, { cause: err });
  }
}
