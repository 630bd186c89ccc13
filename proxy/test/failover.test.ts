import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killNode, startNode } from '../../infra/index';
import type { RoomMessage } from '../../shared/protocol/messages';
import { exchangeDestination, roomAllKey } from '../../shared/protocol/routing';
import { chat, makeRoom, startHarness, type Harness, type TestUser } from '../../testkit/harness';
import { subscribeWithReceipt, waitFor, type StompSession } from '../../testkit/stomp';
import type { UpstreamSnapshot } from '../src/index';
import { makeTestCertificates, type TestCertificates } from '../../testkit/certs';
import { startTestProxy, type TestProxy } from '../../testkit/test-proxy';

let certs: TestCertificates;
beforeAll(async () => {
  certs = await makeTestCertificates();
});
afterAll(() => certs?.remove());

const upstream = (p: TestProxy, url: string): UpstreamSnapshot => {
  const u = p.proxy.upstreams().find((x) => x.url === url);
  if (!u) throw new Error(`no upstream ${url}`);
  return u;
};

describe('an app server dying', () => {
  let one: Harness;
  let two: Harness;
  let p: TestProxy;
  beforeAll(async () => {
    [one, two] = await Promise.all([startHarness(), startHarness()]);
    p = await startTestProxy(certs, { app: [one.server.url, two.server.url] });
  });
  afterAll(async () => {
    await p?.close();
    await one?.close();
  });

  it('leaves every request succeeding through the other one', async () => {
    const room = await makeRoom(one, 1);
    const api = p.api(room.learners[0]!.token);
    const served = async (h: Harness): Promise<number> => {
      const text = await (await fetch(`${h.server.url}/metrics`)).text();
      return Number(/^roomcast_http_requests_total\{method="GET",route="\/api\/me",status="200"\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    // While both live, round robin gives each its share.
    for (let i = 0; i < 4; i++) expect((await api.get('/api/me')).status).toBe(200);
    expect([await served(one), await served(two)]).toEqual([2, 2]);

    await two.close();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      statuses.push((await api.get('/api/me')).status);
      statuses.push((await api.post(`/api/rooms/${room.id}/messages`, chat(`after the loss ${i}`))).status);
    }
    expect(statuses).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 200 : 201)));
    expect(upstream(p, two.server.url).state).toBe('down');
    expect(upstream(p, one.server.url).state).toBe('up');
  });
});

describe('a broker node dying', () => {
  const VICTIM = 3; // 1-based, as infra counts nodes
  let h: Harness;
  let p: TestProxy;
  let victimUrl: string;
  beforeAll(async () => {
    h = await startHarness();
    p = await startTestProxy(certs, { app: [h.server.url] });
    victimUrl = h.config.rabbitmq.nodes[VICTIM - 1]!.webStompUrl;
  });
  afterAll(async () => {
    await p?.close();
    await h?.close();
  });

  async function subscribed(learner: TestUser, roomId: string): Promise<{ session: StompSession; got: RoomMessage[] }> {
    const token = await p.api(learner.token).post('/api/broker-token');
    const session = await p.stomp(token.body.login, token.body.passcode);
    const got: RoomMessage[] = [];
    await subscribeWithReceipt(session, exchangeDestination(roomAllKey(roomId)), (m) => got.push(JSON.parse(m.body) as RoomMessage));
    return { session, got };
  }

  it('closes its proxied WebSockets within seconds, routes new ones elsewhere, and uses it again once back', async () => {
    const nodes = h.config.rabbitmq.nodes.length;
    const room = await makeRoom(h, nodes * 2 + 1);
    const learners = [...room.learners];
    const first = [];
    for (let i = 0; i < nodes; i++) first.push(await subscribed(learners.shift()!, room.id));
    // Fewest-open-first spreads them one per node.
    expect(upstream(p, victimUrl).open).toBe(1);

    const closedAt = new Map<number, number>();
    first.forEach((c, i) => void c.session.closed.then(() => closedAt.set(i, Date.now())));
    try {
      await killNode(h.config, VICTIM);
      const killedAt = Date.now();
      await waitFor(() => closedAt.size === 1, "the dead node's WebSocket to close", 5000);
      expect([...closedAt.values()][0]! - killedAt).toBeLessThan(3000);
      await waitFor(() => upstream(p, victimUrl).state === 'down', 'the proxy to mark the node down', 5000);

      const later = [];
      for (let i = 0; i < nodes; i++) later.push(await subscribed(learners.shift()!, room.id));
      expect(upstream(p, victimUrl).open).toBe(0);
      const metrics = await (await fetch(`${p.proxy.adminUrl}/metrics`)).text();
      expect(metrics).toContain(`roomcast_proxy_upstream_up{kind="web-stomp",upstream="${new URL(victimUrl).host}"} 0`);

      // The survivors and the newcomers all still receive.
      const receivers = [...first.filter((_, i) => !closedAt.has(i)), ...later];
      const sent = await p.api(room.instructor.token).post(`/api/rooms/${room.id}/messages`, chat('still here'));
      expect(sent.status).toBe(201);
      await waitFor(() => receivers.every((r) => r.got.some((m) => m.id === sent.body.id)), 'every live subscriber to receive', 15_000);
    } finally {
      await startNode(h.config, VICTIM);
    }
    await waitFor(() => upstream(p, victimUrl).state === 'up', 'the proxy to take the node back', 10_000);
    await subscribed(learners.shift()!, room.id);
    expect(upstream(p, victimUrl).open).toBe(1);
  });
});
