/**
 * Before any browser starts: Debian's Chromium is installed (root installs it), the services
 * are up (or reused) and the pages are freshly built.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWeb } from '../../web/build';
import { ensureServices, type Logger } from '../../infra/index';
import { BROWSER_PACKAGES, ensureOsPackages } from '../../infra/os-packages';
import { testConfig } from '../../testkit/test-config';

const log: Logger = {
  info: (msg) => process.stdout.write(`[e2e] ${msg}\n`),
  warn: (msg) => process.stdout.write(`[e2e] warning: ${msg}\n`),
};

const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'screenshots');

export default async function globalSetup(): Promise<void> {
  await ensureOsPackages(BROWSER_PACKAGES, log);
  // Only this run's final pages, none left over from an earlier run.
  await rm(SCREENSHOTS, { recursive: true, force: true });
  try {
    await Promise.all([ensureServices(testConfig(), log), buildWeb()]);
  } catch (err) {
    throw new Error(`the e2e set-up failed (${(err as Error).message}). Try: npm run services -- up, then npm run build:web`, { cause: err });
  }
}
