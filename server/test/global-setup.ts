/**
 * Vitest global set-up: brings up (or reuses) the real services the tests talk to:
 * PostgreSQL, Redis, the broker-auth service and the 3-node RabbitMQ cluster.
 */
import { ensureServices } from '../../infra/index';
import { testConfig } from '../../testkit/test-config';

export default async function setup(): Promise<void> {
  const config = testConfig();
  try {
    await ensureServices(config, {
      info: (msg: string) => process.stdout.write(`[infra] ${msg}\n`),
      warn: (msg: string) => process.stdout.write(`[infra] warning: ${msg}\n`),
    });
  } catch (err) {
    throw new Error(`the test services could not be started (${(err as Error).message}). Try: npm run services -- up`, { cause: err });
  }
}
