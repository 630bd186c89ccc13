import { killNode, startNode } from '../../infra/index';
import { chat, makeRoom, type TestUser } from '../../testkit/harness';
import { expectOrderedOnce } from '../support/room-page-driver';
import { expect, test } from '../support/fixtures';

test('pages reconnect through the proxy after the broker node they use is killed, and show no gap', async ({ roomcast, pages }) => {
  test.setTimeout(150_000);
  const { harness, target } = roomcast;
  const room = await makeRoom(harness, 2);
  const [ann, bob] = room.learners as [TestUser, TestUser];
  const before = target.openSocketsByNodePort();
  const annPage = await pages.open(ann, { name: 'learner ann', page: 'learner', roomId: room.id });
  // The node the proxy gave ann's page: the one whose open WebSockets went up.
  const after = target.openSocketsByNodePort();
  if (!before || !after) throw new Error('this test needs the proxy (e2e/support/target.ts)');
  const port = Number(Object.keys(after).find((p) => (after[Number(p)] ?? 0) > (before[Number(p)] ?? 0)));
  const victim = harness.config.rabbitmq.nodes.find((n) => n.webStompPort === port);
  if (!victim) throw new Error(`no node behind port ${port}`);
  const console_ = await pages.open(room.instructor, { name: 'instructor', page: 'instructor', roomId: room.id });

  const texts: string[] = [];
  const send = async (text: string): Promise<void> => {
    const res = await bob.api.post(`/api/rooms/${room.id}/messages`, chat(text));
    expect(res.status).toBe(201);
    texts.push(text);
  };
  try {
    for (let i = 1; i <= 10; i++) await send(`m${i}`);
    await annPage.expectToShow(['m10']);
    await console_.expectToShow(['m10']);

    const statesBefore = await annPage.statesSeen();
    const socketsBefore = (await annPage.socketsOpened()).length;

    await killNode(harness.config, victim.index);
    // Sends go on while the pages find another node (the server's outbox covers its own reconnect).
    for (let i = 11; i <= 25; i++) await send(`m${i}`);
    await annPage.expectLive();
    await console_.expectLive();
    for (let i = 26; i <= 30; i++) await send(`m${i}`);
    // Ann's page saw its connection drop and came back through the proxy on another node.
    expect((await annPage.statesSeen()).slice(statesBefore.length)).toContain('offline');
    expect((await annPage.socketsOpened()).length).toBeGreaterThan(socketsBefore);
    const open = target.openSocketsByNodePort() ?? {};
    expect(open[victim.webStompPort] ?? 0).toBe(0);
    expect(Object.values(open).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(2);

    await annPage.expectToShow(texts);
    expectOrderedOnce(await annPage.shown(), texts, annPage.name);
    // The instructor queue is a quorum queue: when its leader was on the killed node, RabbitMQ
    // 3.10 may leave the server's publishes to it unconfirmed for tens of seconds (the outbox
    // relay keeps retrying). The console then catches up through its silence resync (30 s).
    await console_.expectToShow(texts, 45_000);
    expectOrderedOnce(await console_.shown(), texts, console_.name);
  } finally {
    await startNode(harness.config, victim.index);
  }
});
