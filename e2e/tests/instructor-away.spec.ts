import { chat, makeRoom, type TestUser } from '../../testkit/harness';
import { expectOrderedOnce } from '../support/room-page-driver';
import { expect, test } from '../support/fixtures';

test('the console, reopened after being closed, shows everything sent meanwhile, in order, once', async ({ roomcast, pages }) => {
  const room = await makeRoom(roomcast.harness, 2);
  const [ann, bob] = room.learners as [TestUser, TestUser];
  const first = await pages.open(room.instructor, { name: 'console before', page: 'instructor', roomId: room.id });
  await first.say('welcome');
  await first.expectToShow(['welcome']);
  await first.context.close();

  // Learners keep talking while no console is open: chats, and every third one a question.
  const texts: string[] = [];
  for (let i = 1; i <= 20; i++) {
    const author = i % 2 === 0 ? bob : ann;
    const text = `while away ${i}`;
    const extra = i % 3 === 0 ? { audience: 'instructors', kind: 'question' } : {};
    const res = await author.api.post(`/api/rooms/${room.id}/messages`, chat(text, extra));
    expect(res.status).toBe(201);
    texts.push(text);
  }

  const again = await pages.open(room.instructor, { name: 'console after', page: 'instructor', roomId: room.id });
  await again.expectToShow(texts);
  const shown = await again.shown();
  expectOrderedOnce(shown, ['welcome', ...texts], 'console');
  expect(shown).toHaveLength(21);
  expect(shown.filter((m) => m.kind === 'question').map((m) => m.text)).toEqual(texts.filter((_, i) => (i + 1) % 3 === 0));
  await expect(again.page.locator('#messages li.msg-question')).toHaveCount(6);
});
