/**
 * Recovery: (1) clients that were away while messages were sent catch up through the resync
 * endpoint: how long it takes and at what rate; (2) with thousands of clients (the web page's
 * client library, through the proxy) live, a broker node is killed with -9: how long each
 * client it dropped takes to be live again (reconnected, subscribed and resynced), and the peak
 * the reconnect storm puts on broker-auth, Postgres, the app servers and the proxy.
 */
import { killNode, startNode } from '../../infra/index';
import type { Config } from '../../runtime/config';
import { round, roundSummary, summarize, type LatencySummary } from '../../testkit/stats';
import { HttpClient } from '../../testkit/http-client';
import { dropBenchQueues, makeBenchRooms } from '../../testkit/roomcast-fixtures';
import { startWorker, type WorkerHandle } from '../../testkit/workers';
import { PeakMeter, sampleProc, type Peak } from '../lib/proc-usage';
import type { Services } from '../../server/src/services';
import type { ChaosClientsParams, ChaosClientsResult } from '../../testkit/room-clients-worker';

const RAMP_PER_SECOND = 30;

export interface RecoveryOptions {
  awayClients: number;
  missedMessages: number;
  liveClients: number;
  clientProcesses: number;
  /** Processes of the system by name, for the storm's peaks. */
  pids: Record<string, number>;
  progress: (line: string) => void;
}

export interface RecoveryResult {
  resync: { clients: number; messagesEach: number; seconds: number; messagesPerSecond: number };
  nodeLoss: {
    clients: number;
    node: number;
    /** Seconds from the first client start to all live. */
    rampSeconds: number;
    /** Clients the kill took out of 'live'. */
    dropped: number;
    /** Of those, live again before the deadline. */
    recovered: number;
    /** Per dropped client: seconds from the kill to live again. */
    liveAgainSeconds: LatencySummary;
    allLiveAgainSeconds: number | null;
    /** The storm's peaks (from the kill until all live again), per process. */
    peaks: Record<string, Peak>;
    /** Postgres client connections, highest seen during the storm. */
    postgresConnectionsPeak: number;
    /** Processes of the system that were gone after the storm (the killed node aside). */
    died: string[];
  };
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

  // (2) Node loss: the clients spread over `clientProcesses` workers, all through the proxy.
  const perRoom = 500;
  const rooms = await makeBenchRooms(services, Math.ceil(o.liveClients / perRoom), perRoom);
  const specs = rooms.flatMap((r) => r.learners.map((l) => ({ userId: l.id, roomId: r.id, token: l.token, role: 'learner' as const }))).slice(0, o.liveClients);
  const workers: WorkerHandle<ChaosClientsResult>[] = Array.from({ length: o.clientProcesses }, (_, i) =>
    startWorker<ChaosClientsParams, ChaosClientsResult>(
      new URL('../../testkit/room-clients-worker.ts', import.meta.url),
      {
        proxyUrl: proxy.url,
        ca: proxy.ca,
        clients: specs.filter((_s, j) => j % o.clientProcesses === i),
        // No resync for silence during the run (nothing is sent): 'resyncing' then only follows a reconnect.
        silenceResyncMs: 3_600_000,
        // The ramp is not what is measured: clients come up at a pace the broker takes (about
        // 40 connections/s with two subscriptions each), the storm after the kill comes at once.
        startPerSecond: RAMP_PER_SECOND / o.clientProcesses,
        spreadSources: true,
      },
      { env: { NODE_EXTRA_CA_CERTS: proxy.certFile } },
    ),
  );
  const rampStarted = Date.now();
  await Promise.all(workers.map((w) => w.ready));
  const live = async (): Promise<number> => {
    const states = await Promise.all(workers.map((w) => w.request({ type: 'states' }) as Promise<Record<string, number>>));
    return states.reduce((n, s) => n + (s.live ?? 0), 0);
  };
  /** When all clients are live (after some were seen not live, with `needDrop`), or null at the deadline. */
  const waitAllLive = async (deadlineMs: number, what: string, needDrop: boolean): Promise<number | null> => {
    const deadline = Date.now() + deadlineMs;
    let said = Date.now();
    let dropped = !needDrop;
    while (Date.now() < deadline) {
      const n = await live();
      if (n < specs.length) dropped = true;
      if (dropped && n === specs.length) return Date.now();
      if (Date.now() - said > 5000) {
        o.progress(`recovery: ${n}/${specs.length} live (${what})`);
        said = Date.now();
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return null;
  };
  const allUp = await waitAllLive(600_000, 'starting', false);
  if (allUp === null) throw new Error(`recovery: not all ${specs.length} clients were live within 10 minutes of starting`);
  const rampSeconds = round((allUp - rampStarted) / 1000, 1);
  o.progress(`recovery: ${specs.length} clients live after ${rampSeconds} s; kill -9 broker node 1`);

  const node = 1;
  const watched = Object.fromEntries(Object.entries(o.pids).filter(([name]) => !name.startsWith('rabbitmq') && name !== 'exim' && name !== 'redis'));
  const peaks = new PeakMeter(watched);
  let postgresConnectionsPeak = 0;
  const pgWatch = setInterval(() => {
    services.pool
      .query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend'")
      .then(({ rows }) => (postgresConnectionsPeak = Math.max(postgresConnectionsPeak, rows[0]?.n ?? 0)))
      .catch(() => undefined); // a busy pool skips a sample; the next one counts
  }, 500);
  const killedAt = Date.now();
  await killNode(config, node);
  const allAgain = await waitAllLive(120_000, 'after the kill', true);
  clearInterval(pgWatch);
  const stormPeaks = peaks.stop();
  const died = Object.entries(watched)
    .filter(([, pid]) => sampleProc(pid) === null)
    .map(([name]) => name);
  // Stopping a client sets it 'offline': what comes after this is the end of the run, not the kill.
  const stoppedAt = Date.now();
  const views = (await Promise.all(workers.map((w) => w.stop()))).flatMap((r) => r.views);
  await startNode(config, node);
  await dropBenchQueues(services, [room, ...rooms]);

  // A client the kill dropped lost its connection after it; it is back at its next 'live'
  // (connected, subscribed, resynced).
  const back: number[] = [];
  let dropped = 0;
  for (const v of views) {
    const after = v.timeline.filter(([at]) => at >= killedAt && at < stoppedAt);
    const left = after.findIndex(([, state]) => state === 'connecting' || state === 'offline');
    if (left < 0) continue;
    dropped++;
    const again = after.slice(left).find(([, state]) => state === 'live');
    if (again) back.push((again[0] - killedAt) / 1000);
  }
  const liveAgainSeconds = roundSummary(summarize(back));
  o.progress(
    `recovery: ${dropped} clients dropped by the kill, ${back.length} live again: p50 ${liveAgainSeconds.p50} s, p99 ${liveAgainSeconds.p99} s, max ${liveAgainSeconds.max} s`,
  );
  return {
    resync: { clients: o.awayClients, messagesEach: o.missedMessages, seconds: round(seconds, 2), messagesPerSecond: round(total / seconds, 0) },
    nodeLoss: {
      clients: specs.length,
      node,
      rampSeconds,
      dropped,
      recovered: back.length,
      liveAgainSeconds,
      allLiveAgainSeconds: allAgain === null ? null : round((allAgain - killedAt) / 1000, 2),
      peaks: stormPeaks,
      postgresConnectionsPeak,
      died,
    },
  };
}
