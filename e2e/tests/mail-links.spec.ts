import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { makeRoom, PASSWORD, uniqueName, type TestUser } from '../../testkit/harness';
import { readMailbox } from '../../testkit/mailbox';
import { expect, test } from '../support/fixtures';

/**
 * The links in mails, followed in a real browser: the pages they open are forms the browser
 * must be allowed to submit. The API's own policy (`form-action 'none'`) once made every browser
 * refuse them, and only a browser shows it.
 */

const address = (): string => `e2e-${randomBytes(5).toString('hex')}@example.test`;

test('an unsubscribe link and a password reset link work in a browser, through the proxy', async ({ roomcast, browser }) => {
  const h = roomcast.harness;
  const room = await makeRoom(h, 1);
  const learner = room.learners[0] as TestUser;
  const email = address();
  await h.server.services.pool.query('UPDATE users SET email = $2, email_verified_at = now() WHERE id = $1', [learner.id, email]);
  const context = await browser.newContext({ ignoreHTTPSErrors: roomcast.target.ignoreHTTPSErrors });
  // The mails name the public URL; this test's proxy listens elsewhere.
  const here = (link: string): string => {
    const u = new URL(link);
    return `${roomcast.target.baseURL}${u.pathname}${u.search}`;
  };
  const newest = async (): Promise<string> => {
    const mails = await Promise.all(readMailbox(h.config, email).map((m) => simpleParser(m.raw)));
    return mails.map((m) => m.text ?? '').join('\n');
  };
  try {
    // Unsubscribe: the link from a notification, and the button on its page.
    const sent = await room.instructor.api.post(`/api/rooms/${room.id}/messages`, { clientMsgId: uniqueName('m'), audience: 'member', recipientId: learner.id, kind: 'chat', body: { text: 'see you tomorrow' } });
    expect(sent.status).toBe(201);
    await expect.poll(() => readMailbox(h.config, email).length, { timeout: 20_000 }).toBe(1);
    const unsubscribe = /https:\/\/\S+\/api\/mail\/unsubscribe\?\S+/.exec(await newest())?.[0];
    expect(unsubscribe).toBeTruthy();
    const page = await context.newPage();
    await page.goto(here(unsubscribe as string));
    await page.getByRole('button', { name: 'Unsubscribe' }).click();
    await expect(page.getByRole('heading', { name: 'Unsubscribed' })).toBeVisible();
    expect((await learner.api.get(`/api/rooms/${room.id}/notifications`)).body).toEqual({ mode: 'off' });

    // Password reset: the link from the mail, the form, the new password.
    expect((await h.api.post('/api/auth/password-reset', { email })).status).toBe(202);
    await expect.poll(async () => /password-reset\?token=/.test(await newest()), { timeout: 20_000 }).toBe(true);
    const reset = /https:\/\/\S+\/api\/auth\/password-reset\?token=[\w-]+/.exec(await newest())?.[0];
    await page.goto(here(reset as string));
    const fresh = `fresh-${PASSWORD}-${randomBytes(3).toString('hex')}`;
    await page.getByLabel(/New password/).fill(fresh);
    await page.getByLabel('The same again').fill(fresh);
    await page.getByRole('button', { name: 'Set the new password' }).click();
    await expect(page.getByRole('heading', { name: 'Password changed' })).toBeVisible();
    expect((await h.api.post('/api/auth/login', { username: learner.username, password: fresh })).status).toBe(200);
  } finally {
    await context.close();
  }
});
