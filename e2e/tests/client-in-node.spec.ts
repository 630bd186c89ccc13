/**
 * The client library on its own, in Node (as a load test would run it), with a WebSocket
 * factory that drops frames: a resync after a silence recovers what the socket lost.
 */
import { PASSWORD, chat, makeRoom, type TestUser } from '../../testkit/harness';
import { RoomClient, RoomClientError, RoomcastApi, type ConnectionState } from '../../web/src/client/index';
import { expect, test } from '../support/fixtures';
import { steeredSockets } from '../support/node-socket';

test('in Node, a resync after a silence recovers messages whose frames were dropped', async ({ roomcast }) => {
  const { harness } = roomcast;
  const room = await makeRoom(harness, 2);
  const [ann, bob] = room.learners as [TestUser, TestUser];
  const api = new RoomcastApi({ baseUrl: harness.server.url });
  await api.login(ann.username, PASSWORD);
  const lossy = steeredSockets((frame) => frame.startsWith('MESSAGE') && frame.includes('lost in transit')).factory;
  // The library alone, straight to the Web-STOMP nodes: what is under test is its resync, not the proxy.
  const stompUrls = harness.config.rabbitmq.nodes.map((n) => n.webStompUrl);
  const client = new RoomClient({ api, roomId: room.id, stompUrls, webSocketFactory: lossy, silenceResyncMs: 1500 });
  const states: ConnectionState[] = [];
  client.on('state', (s) => states.push(s));
  client.start();
  try {
    await expect.poll(() => client.state).toBe('live');
    const sent: string[] = [];
    for (const text of ['kept 1', 'lost in transit 1', 'lost in transit 2', 'kept 2']) {
      expect((await bob.api.post(`/api/rooms/${room.id}/messages`, chat(text))).status).toBe(201);
      sent.push(text);
    }
    await expect.poll(() => client.messages.map((m) => m.body.text)).toEqual(sent);
    // Still on its first connection: the lost ones came from a resync after the silence.
    expect(states.slice(0, 3)).toEqual(['connecting', 'resyncing', 'live']);
    expect(states.slice(3)).not.toContain('connecting');
    expect(states.slice(3)).toContain('resyncing');
  } finally {
    await client.stop({ leave: true });
  }
});

test('the client refuses misspelled options instead of silently using defaults', async ({ roomcast }) => {
  const api = new RoomcastApi({ baseUrl: roomcast.harness.server.url });
  const options = { api, roomId: 'r', stompUrls: ['ws://127.0.0.1:1/ws'], heartbeatMS: 5000 } as never;
  expect(() => new RoomClient(options)).toThrow(RoomClientError);
  expect(() => new RoomClient(options)).toThrow('unknown option heartbeatMS');
});
