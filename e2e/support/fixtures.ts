/**
 * The e2e fixtures: one in-process app server per worker (the services come from the global
 * set-up), and per test a page opener that screenshots every page it opened when the test
 * ends, then closes them.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test as base } from '@playwright/test';
import { startHarness, type Harness, type TestUser } from '../../testkit/harness';
import { RoomPageDriver, type OpenOptions } from './room-page-driver';
import { reachRoomcast, type Target } from './target';

export { expect } from '@playwright/test';

const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'screenshots');

export interface Roomcast {
  harness: Harness;
  target: Target;
}

export interface Pages {
  open(user: TestUser, options: OpenOptions): Promise<RoomPageDriver>;
}

const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);

export const test = base.extend<{ pages: Pages }, { roomcast: Roomcast }>({
  roomcast: [
    // Playwright reads fixture dependencies from the destructuring pattern: this one has none.
    // eslint-disable-next-line no-empty-pattern
    async ({}, use) => {
      const harness = await startHarness();
      const target = await reachRoomcast(harness);
      await use({ harness, target });
      await target.close();
      await harness.close();
    },
    { scope: 'worker', timeout: 60_000 },
  ],

  pages: async ({ browser, roomcast }, use, testInfo) => {
    const opened: RoomPageDriver[] = [];
    await use({
      async open(user, options) {
        const driver = await RoomPageDriver.open(browser, roomcast.target, user, options);
        opened.push(driver);
        return driver;
      },
    });
    for (const d of opened) {
      if (!d.page.isClosed()) {
        await d.page.screenshot({ path: path.join(SCREENSHOTS, `${slug(testInfo.title)}--${slug(d.name)}.png`), fullPage: true });
      }
      await d.context.close();
    }
  },
});
