import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, makeRoom, startHarness, type Harness } from '../../testkit/harness';
import { connectStomp, webStompUrl } from '../../testkit/stomp';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

describe('health and metrics', () => {
  it('is live and ready when Postgres, Redis and the broker answer', async () => {
    expect((await h.api.get('/healthz')).status).toBe(200);
    const ready = await h.api.get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ postgres: 'up', redis: 'up', broker: 'up' });
  });

  it('counts persisted and published messages and resync calls', async () => {
    const room = await makeRoom(h, 1);
    await room.learners[0]!.api.post(`/api/rooms/${room.id}/messages`, chat('counted'));
    await room.learners[0]!.api.get(`/api/rooms/${room.id}/messages?after=0`);
    const text = (await h.api.get('/metrics')).body as string;
    expect(text).toMatch(/roomcast_messages_persisted_total\{kind="chat"\} [1-9]/);
    expect(text).toMatch(/roomcast_messages_published_total\{path="request"\} [1-9]/);
    expect(text).toMatch(/roomcast_resync_calls_total [1-9]/);
    expect(text).toMatch(/roomcast_outbox_backlog \d+/);
  });

  it('serves broker-auth decisions as metrics on the internal port', async () => {
    const room = await makeRoom(h, 1);
    const t = await room.learners[0]!.api.post('/api/broker-token');
    await (await connectStomp(webStompUrl(h.config), t.body.login, t.body.passcode)).disconnect();
    const res = await fetch(`http://${h.config.brokerAuth.host}:${h.config.brokerAuth.port}/metrics`);
    expect(await res.text()).toMatch(/roomcast_broker_auth_decisions_total\{question="user",decision="allow"\}/);
  });
});
