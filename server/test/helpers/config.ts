import { loadConfig, type Config } from '../../../shared/config';

/** The configuration tests run with: the real local services, quiet logs, a fast outbox relay. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    ...process.env,
    ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'silent',
    ROOMCAST_OUTBOX_RELAY_AFTER_MS: '300',
    ROOMCAST_OUTBOX_RELAY_INTERVAL_MS: '200',
    ...overrides,
  });
}
