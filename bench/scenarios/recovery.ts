/**
 * Recovery: (1) clients that were away while messages were sent catch up through the resync
 * endpoint: how long it takes and at what rate; (2) after a broker node is killed, how long
 * until every connected client (the web page's client library) is live again.
 */
import { killNode, startNode } from '../../infra/index';
import type { Config } from '../../runtime/config';
import { round } from '../../testkit/stats';
import { HttpClient } from '../../testkit/http-client';
import { dropBenchQueues, makeBenchRooms } from '../../testkit/roomcast-fixtures';
import { startWorker } from '../../testkit/workers';
import type { Services } from '../../server/src/services';
import type { ChaosClientsParams, ChaosClientsResult } from '../../testkit/room-clients-worker';

export interface RecoveryOptions {
  awayClients: number;
  missedMessages: number;
  liveClients: number;
  progress: (line: string) => void;
}

export interface RecoveryResult {
  resync: { clients: number; messagesEach: number; seconds: number; messagesPerSecond: number };
  nodeLoss: { clients: number; allLiveAgainSeconds: number | null; node: number };
}

export async function runRecovery(services: Services, config: Config, proxy: { url: string; ca: string; certFile: string }, o: RecoveryOptions): Promise<RecoveryResult> {
  // (1) Catch-up: messages go in while the clients are away, then they all page through resync at once.
  const [room] = await makeBenchRooms(services, 1, o.awayClients);
  if (!room) throw new Error('no room');
  o.progress(`recovery: storing ${o.missedMessages} messages while ${o.awayClients} clients are away`);
  const http = new HttpClient(proxy.url, { ca: proxy.ca, maxSockets: 32 });
  const auth = { authorization: `Bearer ${room.instructor.token}` };
  for (let i = 0; i < o.missedMessages; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, o.missedMessages - i) }, (_, j) =>
        http.request('POST', `/api/rooms/${room.id}/messages`, { clientMsgId: `away-${i + j}`, audience: 'everyone', kind: 'chat', body: { text: `m${i + j}` } }, auth),
      ),
    );
  }
  const started = Date.now();
  const counts = await Promise.all(
    room.learners.map(async (l) => {
      let after = 0;
      let n = 0;
      for (;;) {
        const res = await http.request('GET', `/api/rooms/${room.id}/messages?after=${after}&limit=500`, undefined, { authorization: `Bearer ${l.token}` });
        const page = res.body as { messages: unknown[]; nextAfter: number; hasMore: boolean };
        n += page.messages.length;
        after = page.nextAfter;
        if (!page.hasMore) return n;
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  http.close();
  const total = counts.reduce((a, b) => a + b, 0);
  if (counts.some((c) => c !== o.missedMessages)) throw new Error(`resync returned ${counts.join(',')} instead of ${o.missedMessages} each`);
  o.progress(`recovery: ${o.awayClients} clients caught up on ${o.missedMessages} messages each in ${seconds.toFixed(2)} s`);

  // (2) Node loss: live clients through the proxy; kill the node with the most of them... any node; time to all live.
  const rooms = await makeBenchRooms(services, 4, Math.ceil(o.liveClients / 4));
  const specs = rooms.flatMap((r) => r.learners.map((l) => ({ userId: l.id, roomId: r.id, token: l.token, role: 'learner' as const }))).slice(0, o.liveClients);
  const worker = startWorker<ChaosClientsParams, ChaosClientsResult>(
    new URL('../../testkit/room-clients-worker.ts', import.meta.url),
    { proxyUrl: proxy.url, ca: proxy.ca, clients: specs, silenceResyncMs: 30_000 },
    { env: { NODE_EXTRA_CA_CERTS: proxy.certFile } },
  );
  await worker.ready;
  const live = async (): Promise<number> => ((await worker.request({ type: 'states' })) as Record<string, number>).live ?? 0;
  while ((await live()) < specs.length) await new Promise((r) => setTimeout(r, 200));
  const node = 1;
  o.progress(`recovery: ${specs.length} clients live; kill -9 broker node ${node}`);
  const killedAt = Date.now();
  await killNode(config, node);
  let allLiveAgainSeconds: number | null = null;
  let sawDrop = false;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const n = await live();
    if (n < specs.length) sawDrop = true;
    if (sawDrop && n === specs.length) {
      allLiveAgainSeconds = round((Date.now() - killedAt) / 1000, 2);
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await worker.stop();
  await startNode(config, node);
  await dropBenchQueues(services, [room, ...rooms]);
  o.progress(`recovery: all ${specs.length} clients live again ${allLiveAgainSeconds ?? 'never (60 s)'} s after the kill`);
  return {
    resync: { clients: o.awayClients, messagesEach: o.missedMessages, seconds: round(seconds, 2), messagesPerSecond: round(total / seconds, 0) },
    nodeLoss: { clients: specs.length, allLiveAgainSeconds, node },
  };
}
