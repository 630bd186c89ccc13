import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, makeRoom, startHarness, type Harness } from '../../testkit/harness';
import { waitFor } from '../../testkit/stomp';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ mail: false, relay: false });
});
afterAll(() => h.close());

describe('room event listener', () => {
  it('tells a room’s followers of each commit there, and nobody else’s', async () => {
    const [a, b] = [await makeRoom(h, 1), await makeRoom(h, 0)];
    const heard: string[] = [];
    const stopA = h.server.events.listener.follow(a.id, () => heard.push('a'));
    const stopB = h.server.events.listener.follow(b.id, () => heard.push('b'));
    try {
      expect((await a.learners[0]!.api.post(`/api/rooms/${a.id}/messages`, chat('x'))).status).toBe(201);
      await waitFor(() => heard.includes('a'), 'the notification');
      expect(heard).not.toContain('b');
    } finally {
      stopA();
      stopB();
    }
  });

  it('after losing its connection, reconnects and tells every follower to look', async () => {
    const room = await makeRoom(h, 1);
    let told = 0;
    const stop = h.server.events.listener.follow(room.id, () => told++);
    try {
      await h.server.services.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'roomcast-listen'`);
      await waitFor(() => told > 0, 'a look after the reconnect', 10_000);
      const before = told;
      expect((await room.learners[0]!.api.post(`/api/rooms/${room.id}/messages`, chat('after the reconnect'))).status).toBe(201);
      await waitFor(() => told > before, 'notifications again');
    } finally {
      stop();
    }
  });
});
