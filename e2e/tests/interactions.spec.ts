import { makeRoom, type TestUser } from '../../testkit/harness';
import { accessibilityViolations } from '../support/accessibility';
import { expect, test } from '../support/fixtures';

/**
 * A class in Chromium: the instructor leads the view, runs a quiz, lowers hands and marks a
 * question; two learners follow on phones, answer, raise hands, ask and upvote; one reloads in
 * the middle and lands on the same state.
 */
test('the instructor leads the view and a quiz; learners follow, answer and see the result; hands and the board', async ({ roomcast, pages }) => {
  const room = await makeRoom(roomcast.harness, 2);
  const [ann, bob] = room.learners as [TestUser, TestUser];
  const teacher = (await pages.open(room.instructor, { name: 'instructor', page: 'instructor', roomId: room.id })).page;
  const annPage = (await pages.open(ann, { name: 'ann', page: 'learner', roomId: room.id })).page;
  const bobDriver = await pages.open(bob, { name: 'bob', page: 'learner', roomId: room.id });
  const bobPage = bobDriver.page;

  // The view: every page follows.
  await teacher.getByRole('button', { name: 'Start' }).click();
  await teacher.getByRole('button', { name: 'Next step' }).click();
  for (const p of [teacher, annPage, bobPage]) await expect(p.locator('#shown-step .step-text')).toHaveText('Step 2');

  // A quiz: opened, answered, the instructor's tally live, revealed to the learners.
  await teacher.getByLabel('Question', { exact: true }).fill('Which is a noble gas?');
  await teacher.getByLabel('Choices, one per line').fill('Oxygen\nNeon\nNitrogen');
  await teacher.getByLabel('Right choices, for a quiz (numbers, e.g. 2)').fill('2');
  await teacher.getByRole('button', { name: 'Open the poll' }).click();
  await annPage.getByLabel('Neon').check();
  await annPage.getByRole('button', { name: 'Answer' }).click();
  await expect(annPage.locator('.poll-mine')).toHaveText('Your answer: Neon');
  // Bob reloads mid-poll: he lands on the same open poll, and answers from there.
  await bobPage.reload();
  await bobDriver.expectLive();
  await expect(bobPage.locator('#shown-step .step-text')).toHaveText('Step 2');
  await bobPage.getByLabel('Oxygen').check();
  await bobPage.getByRole('button', { name: 'Answer' }).click();
  const teacherPoll = teacher.locator('.poll').first();
  await expect(teacherPoll.locator('.poll-answered')).toHaveText('2 answered');
  await expect(teacherPoll.locator('[data-choice="1"]')).toHaveAttribute('data-count', '1');
  // Learners see no tally before the reveal.
  await expect(annPage.locator('.poll .tally')).toHaveCount(0);
  await teacherPoll.getByRole('button', { name: 'Reveal results' }).click();
  for (const p of [annPage, bobPage]) {
    await expect(p.locator('.poll [data-choice="0"]')).toHaveAttribute('data-count', '1');
    await expect(p.locator('.poll [data-choice="1"]')).toContainText('Neon ✓: 1');
  }
  await teacherPoll.getByRole('button', { name: 'Close poll' }).click();
  await expect(annPage.locator('.poll').first()).toHaveAttribute('data-open', 'false');

  // Hands: two go up, in order; the instructor lowers one; learners see the count.
  await annPage.getByRole('button', { name: 'Raise my hand' }).click();
  await bobPage.getByRole('button', { name: 'Raise my hand' }).click();
  await expect(teacher.locator('.hand-queue li')).toHaveCount(2);
  await expect(teacher.locator('.hand-queue li').first()).toHaveAttribute('data-user-id', ann.id);
  await teacher.getByRole('button', { name: `Lower ${ann.username}’s hand` }).click();
  await expect(bobPage.locator('.hand-count')).toHaveText('1 hand raised');
  await expect(annPage.getByRole('button', { name: 'Raise my hand' })).toBeVisible();

  // The board: Bob asks the instructor; made public, Ann upvotes it; marked answered.
  await bobPage.locator('#audience').selectOption('instructors');
  await bobPage.locator('#message-text').fill('Is neon reactive?');
  await bobPage.locator('#message-text').press('Enter');
  const q = teacher.locator('.board-question', { hasText: 'Is neon reactive?' });
  await expect(teacher.locator('#open-questions')).toHaveText('1 open');
  await q.getByRole('button', { name: 'Make public' }).click();
  await annPage.locator('.board-question', { hasText: 'Is neon reactive?' }).getByRole('button', { name: 'Upvote' }).click();
  await expect(q).toHaveAttribute('data-upvotes', '1');
  await q.getByRole('button', { name: 'Answered' }).click();
  await expect(teacher.locator('#open-questions')).toHaveText('0 open');
  await expect(annPage.locator('.board-question', { hasText: 'Is neon reactive?' })).toContainText('answered');

  // Bob is offline while the instructor moves three steps and opens a poll; back, his page shows exactly the current state.
  await bobDriver.cutNetwork();
  for (let i = 0; i < 3; i++) await teacher.getByRole('button', { name: 'Next step' }).click();
  await teacher.getByLabel('Question', { exact: true }).fill('Lunch now?');
  await teacher.getByLabel('Choices, one per line').fill('Yes\nNo');
  await teacher.getByRole('button', { name: 'Open the poll' }).click();
  await expect(annPage.locator('#shown-step .step-text')).toHaveText('Step 5');
  await expect(bobPage.locator('#shown-step .step-text')).toHaveText('Step 2');
  await bobDriver.restoreNetwork();
  await bobDriver.expectLive();
  await expect(bobPage.locator('#shown-step .step-text')).toHaveText('Step 5');
  await expect(bobPage.locator('.poll', { hasText: 'Lunch now?' }).getByRole('button', { name: 'Answer' })).toBeVisible();
  await expect(bobPage.locator('.poll')).toHaveCount(2);

  // Both pages, with everything above on them, pass WCAG 2.1 A and AA rules (a phone-sized learner page, the desktop console).
  for (const [who, p] of [['learner', annPage], ['instructor', teacher]] as const) expect(await accessibilityViolations(p), who).toEqual([]);
});
