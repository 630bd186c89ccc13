import { defineConfig } from 'vitest/config';

/**
 * Unit tests of the browser client's logic (`npm run test:unit`): no services, no network, no
 * global set-up; time is faked in each test, so they run in about a second.
 */
export default defineConfig({
  test: {
    include: ['web/test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 10_000,
    reporters: ['default'],
  },
});
