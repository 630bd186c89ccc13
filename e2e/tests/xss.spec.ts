import { makeRoom, type TestUser } from '../../testkit/harness';
import { expect, test } from '../support/fixtures';

const PAYLOAD = `<img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2</script><b>bold?</b>`;

test('a message full of HTML shows as text and runs nothing', async ({ roomcast, pages }) => {
  const room = await makeRoom(roomcast.harness, 2);
  const [ann, bob] = room.learners as [TestUser, TestUser];
  const annPage = await pages.open(ann, { name: 'learner ann', page: 'learner', roomId: room.id });
  const bobPage = await pages.open(bob, { name: 'learner bob', page: 'learner', roomId: room.id });
  const console_ = await pages.open(room.instructor, { name: 'instructor', page: 'instructor', roomId: room.id });
  const dialogs: string[] = [];
  for (const p of [annPage, bobPage, console_]) p.page.on('dialog', (d) => void d.dismiss().then(() => dialogs.push(d.message())));

  await annPage.say(PAYLOAD);
  for (const p of [annPage, bobPage, console_]) {
    await p.expectToShow([PAYLOAD]);
    await expect(p.page.locator('#messages img, #messages script, #messages b')).toHaveCount(0);
    expect(await p.page.evaluate(() => (window as any).__pwned)).toBeUndefined();
  }
  expect(dialogs).toEqual([]);
});
