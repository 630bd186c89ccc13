import { chat, makeRoom, type TestUser } from '../../testkit/harness';
import { expectOrderedOnce } from '../support/room-page-driver';
import { expect, test } from '../support/fixtures';

test('a learner whose connection is cut sees every message once, in order, and what they typed offline is delivered once', async ({
  roomcast,
  pages,
}) => {
  const room = await makeRoom(roomcast.harness, 2);
  const [ann, bob] = room.learners as [TestUser, TestUser];
  const annPage = await pages.open(ann, { name: 'learner ann', page: 'learner', roomId: room.id });

  const flowing: string[] = [];
  const send = async (text: string): Promise<void> => {
    const res = await bob.api.post(`/api/rooms/${room.id}/messages`, chat(text));
    expect(res.status).toBe(201);
    flowing.push(text);
  };
  for (let i = 1; i <= 5; i++) await send(`before ${i}`);
  await annPage.expectToShow(['before 5']);

  await annPage.cutNetwork();
  await expect(annPage.page.locator('#connection')).not.toHaveAttribute('data-state', 'live');
  for (let i = 1; i <= 5; i++) await send(`during ${i}`);
  const typedOffline = ['typed offline 1', 'typed offline 2', 'typed offline 3'];
  for (const t of typedOffline) await annPage.say(t);
  for (const t of typedOffline) await expect(annPage.page.locator('#pending li', { hasText: t })).toHaveAttribute('data-status', 'sending');
  for (let i = 6; i <= 10; i++) await send(`during ${i}`);

  await annPage.restoreNetwork();
  await annPage.expectLive();
  expect(await annPage.statesSeen()).toEqual(expect.arrayContaining(['offline', 'connecting', 'resyncing']));
  for (let i = 1; i <= 5; i++) await send(`after ${i}`);
  await annPage.expectToShow([...flowing, ...typedOffline]);
  for (const t of typedOffline) await expect(annPage.page.locator('#messages li', { hasText: t })).toHaveAttribute('data-status', 'sent');
  await expect(annPage.page.locator('#pending li')).toHaveCount(0);

  // A send whose answer is lost on the way back is retried with the same client message id.
  let cut = false;
  await annPage.page.route('**/api/rooms/*/messages', async (route) => {
    if (cut || route.request().method() !== 'POST') return route.fallback();
    cut = true;
    await route.fetch(); // the server stores it...
    await route.abort('connectionreset'); // ...and the page never hears back
  });
  await annPage.say('answer lost once');
  await expect(annPage.page.locator('#messages li', { hasText: 'answer lost once' })).toHaveAttribute('data-status', 'sent');
  expect(cut).toBe(true);

  const shown = await annPage.shown();
  const ownTexts = [...typedOffline, 'answer lost once'];
  expectOrderedOnce(shown, flowing, 'ann');
  expect(shown.filter((m) => ownTexts.includes(m.text)).map((m) => m.text)).toEqual(ownTexts);

  // The server stored each of ann's messages exactly once.
  const stored = await room.instructor.api.get(`/api/rooms/${room.id}/messages?after=0&limit=500`);
  const storedTexts = (stored.body.messages as { senderId: string; body: { text: string } }[]).filter((m) => m.senderId === ann.id).map((m) => m.body.text);
  expect(storedTexts).toEqual(ownTexts);
});
