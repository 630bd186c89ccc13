import { chat, makeRoom, type TestUser } from '../../testkit/harness';
import { brokerDenials } from '../../testkit/stomp';
import { expect, test } from '../support/fixtures';

test("a learner of room A cannot see room B's messages, by the page or by a crafted STOMP subscription", async ({ roomcast, pages }) => {
  const { harness, target } = roomcast;
  const roomA = await makeRoom(harness, 1);
  const roomB = await makeRoom(harness, 1);
  const ann = roomA.learners[0] as TestUser;
  const bea = roomB.learners[0] as TestUser;

  // The room picker offers only ann's room.
  const annPage = await pages.open(ann, { name: 'learner ann of room A', page: 'learner' });
  await expect(annPage.page.locator('#room-list button')).toHaveCount(1);
  await expect(annPage.page.locator(`#room-list button[data-room-id="${roomA.id}"]`)).toBeVisible();

  // Asking for room B by address gets the server's refusal, not the room.
  await annPage.page.goto(`/index.html#room=${roomB.id}`);
  await expect(annPage.page.locator('#rooms-error')).toHaveText('you are not a member of this room');
  await expect(annPage.page.locator('#room-view')).toBeHidden();

  // From ann's page, with ann's own broker token, subscribe to room B by hand: the broker says no.
  const denialsBefore = await brokerDenials(harness.config);
  const stompUrl = target.stompUrls?.[0] ?? new URL('/ws', target.baseURL.replace(/^http/, 'ws')).toString();
  const crafted = annPage.page.evaluate(
    async ({ url, roomId }) => {
      const session = JSON.parse(sessionStorage.getItem('roomcast.session') ?? 'null') as { token: string };
      const res = await fetch('/api/broker-token', { method: 'POST', headers: { authorization: `Bearer ${session.token}` } });
      const token = (await res.json()) as { login: string; passcode: string };
      const frames: string[] = [];
      const ws = new WebSocket(url, ['v12.stomp']);
      const frame = (command: string, headers: Record<string, string>): string =>
        `${command}\n${Object.entries(headers).map(([k, v]) => `${k}:${v}`).join('\n')}\n\n\0`;
      return new Promise<{ frames: string[]; closed: boolean }>((resolve) => {
        ws.onopen = () => ws.send(frame('CONNECT', { 'accept-version': '1.2', host: '/', login: token.login, passcode: token.passcode, 'heart-beat': '0,0' }));
        ws.onmessage = (event) => {
          const text = String(event.data);
          frames.push(text.split('\n')[0] ?? '');
          if (text.startsWith('CONNECTED')) {
            ws.send(frame('SUBSCRIBE', { id: 'sneak', destination: `/exchange/amq.topic/room.${roomId}.all`, receipt: 'bound' }));
          }
        };
        ws.onclose = () => resolve({ frames, closed: true });
      });
    },
    { url: stompUrl, roomId: roomB.id },
  );
  // Meanwhile room B talks.
  const posted = await bea.api.post(`/api/rooms/${roomB.id}/messages`, chat('room B secret'));
  expect(posted.status).toBe(201);
  const result = await crafted;
  // RabbitMQ 3.10 ends the connection on the denied SUBSCRIBE (sometimes with an ERROR frame
  // first): no RECEIPT, no MESSAGE, and broker-auth counted the refusal.
  expect(result.frames.filter((f) => f !== 'ERROR')).toEqual(['CONNECTED']);
  expect(result.closed).toBe(true);
  expect(await brokerDenials(harness.config)).toBeGreaterThan(denialsBefore);

  // Back in ann's own room, room B's message is nowhere.
  await annPage.page.goto(`/index.html#room=${roomA.id}`);
  await annPage.expectLive();
  await harness.api.withToken(roomA.instructor.token).post(`/api/rooms/${roomA.id}/messages`, chat('room A marker'));
  await annPage.expectToShow(['room A marker']);
  expect(await annPage.texts()).toEqual(['room A marker']);
});
