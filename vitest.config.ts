import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['server/test/**/*.test.ts', 'infra/test/**/*.test.ts', 'proxy/test/**/*.test.ts', 'runtime/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    // server/test/unit/ is the unit layer's (vitest.unit.config.ts).
    exclude: ['**/node_modules/**', 'server/test/unit/**'],
    globalSetup: ['server/test/global-setup.ts'],
    // The suites share one broker cluster and some stop its nodes: run files one at a time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
