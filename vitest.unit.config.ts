import { defineConfig } from 'vitest/config';

/**
 * Unit tests (`npm run test:unit`): the browser client's logic and the server's delivery and
 * leased-work logic against fakes. No services, no network, no global set-up; time is faked in
 * each test, so they run in seconds.
 */
export default defineConfig({
  test: {
    include: ['web/test/**/*.test.ts', 'server/test/unit/**/*.test.ts'],
    environment: 'node',
    testTimeout: 10_000,
    reporters: ['default'],
  },
});
