import { loadConfig, type Config } from '../runtime/config';

/**
 * The configuration tests run with: the test profile's own services (never what `npm start`
 * runs), quiet logs, a fast outbox relay. The profile goes into this process's environment, so
 * the services and servers that infra starts from here read the same one.
 */
export function testConfig(overrides: Record<string, string> = {}): Config {
  process.env.ROOMCAST_PROFILE ??= 'test';
  return loadConfig({
    ...process.env,
    ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'silent',
    ROOMCAST_OUTBOX_RELAY_AFTER_MS: '300',
    ROOMCAST_OUTBOX_RELAY_INTERVAL_MS: '200',
    // Webhook retries in a blink (four attempts in about a second), whichever test server takes the job.
    ROOMCAST_WEBHOOK_SCHEDULE_MS: '300,300,300',
    ...overrides,
  });
}
