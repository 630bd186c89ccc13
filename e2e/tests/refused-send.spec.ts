import type { Page } from '@playwright/test';
import { makeRoom, type TestUser } from '../../testkit/harness';
import { expect, test } from '../support/fixtures';

/** Well over the server's 16 KiB body limit: the server answers 413 body_too_large. */
const tooLong = (label: string): string => `${label} ${'x'.repeat(20_000)}`;

/** The composer caps typing at 4,000 characters; a pasted script or an older page need not, and the server is what refuses. */
async function liftComposerLimit(page: Page): Promise<void> {
  await page.locator('#message-text').evaluate((input) => input.removeAttribute('maxlength'));
}

interface Stored {
  senderId: string;
  clientMsgId: string;
  body: { text: string };
}

test('a refused message shows as failed with discard and edit, and never blocks what is sent after it', async ({ roomcast, pages }) => {
  const room = await makeRoom(roomcast.harness, 2);
  const [ann, bob] = room.learners as [TestUser, TestUser];
  const annPage = await pages.open(ann, { name: 'learner ann', page: 'learner', roomId: room.id });
  const bobPage = await pages.open(bob, { name: 'learner bob', page: 'learner', roomId: room.id });
  await liftComposerLimit(annPage.page);

  await annPage.say(tooLong('refused one'));
  const refused = annPage.unsent('refused one');
  await expect(refused).toHaveAttribute('data-status', 'failed');
  await expect(refused).toHaveAttribute('data-error-code', 'body_too_large');
  await expect(refused.locator('.msg-error')).toContainText('The server refused it');
  await expect(refused.locator('.msg-error')).toContainText('16384');
  await expect(refused.getByRole('button', { name: /^Discard unsent message: refused one/ })).toBeVisible();
  await expect(refused.getByRole('button', { name: /^Edit unsent message: refused one/ })).toBeVisible();

  // What is typed after it goes through, for ann and everyone else.
  await annPage.say('sent after the refusal');
  await expect(annPage.page.locator('#messages li', { hasText: 'sent after the refusal' })).toHaveAttribute('data-status', 'sent');
  await bobPage.expectToShow(['sent after the refusal']);
  await expect(refused).toHaveAttribute('data-status', 'failed');

  // Edit, from the keyboard: the text goes back to the composer, and once shortened it is sent as a new message (new id).
  const refusedId = await refused.getAttribute('data-client-msg-id');
  await refused.getByRole('button', { name: /^Edit/ }).focus();
  await annPage.page.keyboard.press('Enter');
  await expect(refused).toHaveCount(0);
  await expect(annPage.page.locator('#message-text')).toBeFocused();
  expect(await annPage.page.locator('#message-text').inputValue()).toBe(tooLong('refused one'));
  await annPage.page.locator('#message-text').fill('refused one, shortened');
  await annPage.page.locator('#message-text').press('Enter');
  const edited = annPage.page.locator('#messages li', { hasText: 'refused one, shortened' });
  await expect(edited).toHaveAttribute('data-status', 'sent');
  expect(await edited.getAttribute('data-client-msg-id')).not.toBe(refusedId);

  // Discard, from the keyboard: it goes away and is never sent.
  await annPage.say(tooLong('refused two'));
  const refusedTwo = annPage.unsent('refused two');
  await expect(refusedTwo).toHaveAttribute('data-status', 'failed');
  await refusedTwo.getByRole('button', { name: /^Discard/ }).focus();
  await annPage.page.keyboard.press('Enter');
  await expect(refusedTwo).toHaveCount(0);

  const stored = await room.instructor.api.get(`/api/rooms/${room.id}/messages?after=0&limit=500`);
  const annTexts = (stored.body.messages as Stored[]).filter((m) => m.senderId === ann.id).map((m) => m.body.text);
  expect(annTexts).toEqual(['sent after the refusal', 'refused one, shortened']);
});

test('unsent messages survive a reload: a pending one is sent with its original id, a refused one still shows', async ({ roomcast, pages }) => {
  const room = await makeRoom(roomcast.harness, 1);
  const [ann] = room.learners as [TestUser];
  const annPage = await pages.open(ann, { name: 'learner ann', page: 'learner', roomId: room.id });
  await liftComposerLimit(annPage.page);
  await annPage.say(tooLong('refused before reload'));
  await expect(annPage.unsent('refused before reload')).toHaveAttribute('data-status', 'failed');

  // The app server cannot be reached for sends (the broker connection stays up): what is typed waits.
  let blocked = true;
  await annPage.page.route('**/api/rooms/*/messages', (route) =>
    blocked && route.request().method() === 'POST' ? route.abort('connectionrefused') : route.fallback(),
  );
  await annPage.say('typed while unreachable 1');
  await annPage.say('typed while unreachable 2');
  for (const t of ['typed while unreachable 1', 'typed while unreachable 2']) await expect(annPage.unsent(t)).toHaveAttribute('data-status', 'sending');
  const ids = [
    await annPage.unsent('typed while unreachable 1').getAttribute('data-client-msg-id'),
    await annPage.unsent('typed while unreachable 2').getAttribute('data-client-msg-id'),
  ];

  await annPage.page.reload();
  await annPage.expectLive();
  for (const t of ['typed while unreachable 1', 'typed while unreachable 2']) await expect(annPage.unsent(t)).toHaveAttribute('data-status', 'sending');
  const refused = annPage.unsent('refused before reload');
  await expect(refused).toHaveAttribute('data-status', 'failed');
  await expect(refused.locator('.msg-error')).toContainText('16384');

  // Reachable again (the browser says it is online): both go, in order, with the ids they had before the reload.
  blocked = false;
  await annPage.page.evaluate(() => window.dispatchEvent(new Event('online')));
  for (const t of ['typed while unreachable 1', 'typed while unreachable 2']) {
    await expect(annPage.page.locator('#messages li', { hasText: t })).toHaveAttribute('data-status', 'sent');
  }
  await expect(annPage.page.locator('#pending > li')).toHaveCount(1);

  const stored = await room.instructor.api.get(`/api/rooms/${room.id}/messages?after=0&limit=500`);
  const own = (stored.body.messages as Stored[]).filter((m) => m.senderId === ann.id);
  expect(own.map((m) => m.body.text)).toEqual(['typed while unreachable 1', 'typed while unreachable 2']);
  expect(own.map((m) => m.clientMsgId)).toEqual(ids);

  // Discarded, it stays gone after another reload; nothing of ann's is left in storage.
  await refused.getByRole('button', { name: /^Discard/ }).click();
  await expect(refused).toHaveCount(0);
  await annPage.page.reload();
  await annPage.expectLive();
  await expect(annPage.page.locator('#pending > li')).toHaveCount(0);
  const left = await annPage.page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('roomcast.unsent/')));
  expect(left).toEqual([]);
});
