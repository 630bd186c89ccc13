import { randomBytes } from 'node:crypto';
import { setEximHook } from '../../infra/index';
import { makeRoom } from '../../testkit/harness';
import { readMailbox } from '../../testkit/mailbox';
import { expect, test } from '../support/fixtures';

/**
 * An instructor mails the room from the console and follows the campaign's progress bar to the
 * end; pausing and resuming from the page. The mails really go through the test Exim.
 */
test('an announcement by e-mail from the console: its progress bar fills, pause and resume work, every learner gets one mail', async ({ roomcast, pages }) => {
  const h = roomcast.harness;
  const room = await makeRoom(h, 3);
  const emails = room.learners.map(() => `e2e-cmp-${randomBytes(5).toString('hex')}@example.test`);
  for (const [i, learner] of room.learners.entries()) {
    await h.server.services.pool.query('UPDATE users SET email = $2, email_verified_at = now() WHERE id = $1', [learner.id, emails[i]]);
  }
  const console = await pages.open(room.instructor, { name: 'instructor', page: 'instructor', roomId: room.id });
  const page = console.page;

  await page.getByLabel('Subject').fill('No class on Friday');
  await page.getByLabel('Announcement', { exact: true }).fill('The building is closed; we meet on Monday.');
  await page.getByRole('button', { name: 'Mail every member' }).click();
  await expect(page.locator('#campaign-notice')).toHaveText('Sending to 3 members with an e-mail address.');

  const item = page.locator('#campaign-list > li').first();
  await expect(item).toHaveAttribute('data-state', 'done', { timeout: 30_000 });
  await expect(item.locator('progress')).toHaveAttribute('value', '100');
  await expect(item).toContainText('3 of 3 done (100%)');
  await expect(item).toContainText('3 sent');
  for (const email of emails) await expect.poll(() => readMailbox(h.config, email).length, { timeout: 20_000 }).toBe(1);

  // A finished campaign offers no buttons. The next one meets a relay that answers 421: it waits,
  // says why, and is paused and resumed from the page.
  await expect(item.getByRole('button')).toHaveCount(0);
  setEximHook(h.config, 'slow-down', true);
  try {
    await page.getByLabel('Subject').fill('Second notice');
    await page.getByLabel('Announcement', { exact: true }).fill('Bring your notes.');
    await page.getByRole('button', { name: 'Mail every member' }).click();
    const second = page.locator('#campaign-list > li').first();
    await expect(second).toContainText('Second notice');
    await expect(second.locator('.campaign-why')).toContainText(/Waiting: .*(slow down|sends failed)/, { timeout: 20_000 });
    await second.getByRole('button', { name: 'Pause' }).click();
    await expect(second).toHaveAttribute('data-state', 'paused');
    await expect(second.locator('.campaign-why')).toHaveText('Paused: paused by hand');
    setEximHook(h.config, 'slow-down', false);
    await second.getByRole('button', { name: 'Resume' }).click();
    await expect(second).toHaveAttribute('data-state', 'done', { timeout: 60_000 });
    await expect(second).toContainText('3 of 3 done (100%)');
  } finally {
    setEximHook(h.config, 'slow-down', false);
  }
  for (const email of emails) await expect.poll(() => readMailbox(h.config, email).length, { timeout: 20_000 }).toBe(2);
});
