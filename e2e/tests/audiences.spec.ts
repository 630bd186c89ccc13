import { makeRoom, type TestUser } from '../../testkit/harness';
import { expect, test } from '../support/fixtures';

test('a chat reaches everyone, a question only the instructor, a private reply only its learner', async ({ roomcast, pages }) => {
  const room = await makeRoom(roomcast.harness, 2);
  const [ann, bob] = room.learners as [TestUser, TestUser];
  const annPage = await pages.open(ann, { name: 'learner ann', page: 'learner', roomId: room.id });
  const bobPage = await pages.open(bob, { name: 'learner bob', page: 'learner', roomId: room.id });
  const console_ = await pages.open(room.instructor, { name: 'instructor', page: 'instructor', roomId: room.id });

  // Presence: the console's first heartbeat comes after both learners', so it sees all three.
  await expect(console_.page.locator('#online-count')).toHaveText('3 online');
  await expect(console_.page.locator('#online-members li')).toHaveCount(3);

  await annPage.say('hello everyone');
  const sent = annPage.page.locator('#messages li', { hasText: 'hello everyone' });
  await expect(sent).toHaveAttribute('data-status', 'sent');
  for (const p of [annPage, bobPage, console_]) await p.expectToShow(['hello everyone']);

  await bobPage.say('what is a monad?', 'instructors');
  await expect(bobPage.page.locator('#messages li', { hasText: 'what is a monad?' })).toHaveAttribute('data-status', 'sent');
  const question = console_.page.locator('#messages li.msg-question', { hasText: 'what is a monad?' });
  await expect(question).toBeVisible();

  // The console answers bob privately from his question.
  await question.getByRole('button', { name: 'Reply privately' }).click();
  await expect(console_.page.locator('#audience')).toHaveValue(bob.id);
  await console_.page.locator('#message-text').fill('a monoid in the category of endofunctors');
  await console_.page.locator('#message-text').press('Enter');
  await bobPage.expectToShow(['a monoid in the category of endofunctors']);

  // A broadcast after both: once ann has it, anything meant for her would have arrived too.
  await console_.say('marker: end of part one');
  for (const p of [annPage, bobPage, console_]) await p.expectToShow(['marker: end of part one']);

  expect(await annPage.texts()).toEqual(['hello everyone', 'marker: end of part one']);
  expect(await bobPage.texts()).toEqual(['hello everyone', 'what is a monad?', 'a monoid in the category of endofunctors', 'marker: end of part one']);
  expect(await console_.texts()).toEqual(['hello everyone', 'what is a monad?', 'a monoid in the category of endofunctors', 'marker: end of part one']);

  // Ann closes her tab: her page says goodbye, and the console's next presence read drops her.
  await annPage.page.close();
  await expect(console_.page.locator('#online-count')).toHaveText('2 online', { timeout: 15_000 });
  await expect(console_.page.locator(`#online-members li[data-user-id="${ann.id}"]`)).toHaveCount(0);
});
