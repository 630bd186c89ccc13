/**
 * A room load under faults, shared by the chaos run (one machine) and the multi-host run
 * (network namespaces): headless room clients built on the web page's client library in child
 * processes, posters at a steady rate, a schedule of faults, and at the end the check of every
 * POST, every stored row and every client's view (verify.ts), with the time to converge.
 */
import type { Services } from '../../server/src/services';
import { makeBenchRooms, type BenchRoom } from '../../testkit/roomcast-fixtures';
import { summarize } from '../../testkit/stats';
import { startWorker, type WorkerHandle } from '../../testkit/workers';
import type { ChaosClientSpec, ChaosClientsParams, ChaosClientsResult } from '../../testkit/room-clients-worker';
import type { ChaosPosterParams, ChaosPosterResult } from './chaos-poster';
import { convergenceAfter, explainMissing, verify, type StoredMessage } from './verify';

export interface Fault {
  /** When, as a fraction of the posting phase. */
  at: number;
  name: string;
  run(): Promise<void>;
}

export interface LoadOptions {
  rooms: number;
  viewers: number;
  /** Posts per second over all rooms. */
  rate: number;
  processes: number;
  durationMs: number;
  /** The proxy's https URL and its certificate (PEM, and the file for NODE_EXTRA_CA_CERTS). */
  proxy: { url: string; ca: string; certFile: string };
  say: (line: string) => void;
}

export interface LoadReport {
  /** The figures and problems, a line each; the caller adds its own checks and the verdict. */
  lines: string[];
  pass: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the load: makes the rooms, connects the clients, posts for `durationMs` while `faults`
 * run on schedule, then `repair()` (whatever a fault left broken), a final resync of every
 * client, and the verdict.
 */
export async function runRoomLoad(services: Services, o: LoadOptions, faults: Fault[], repair: () => Promise<void>): Promise<LoadReport> {
  const { say } = o;
  // Two extra learners per room post; the viewers only watch, so their views come from the broker and resync alone.
  const made = await makeBenchRooms(services, o.rooms, o.viewers + 2);
  const clientSpecs: ChaosClientSpec[] = made.flatMap((r) => [
    { userId: r.instructor.id, roomId: r.id, token: r.instructor.token, role: 'instructor' as const },
    ...r.learners.slice(0, o.viewers).map((l) => ({ userId: l.id, roomId: r.id, token: l.token, role: 'learner' as const })),
  ]);
  const shares: ChaosClientSpec[][] = Array.from({ length: o.processes }, () => []);
  clientSpecs.forEach((c, i) => shares[i % o.processes]?.push(c));
  const clients = shares.map((share) =>
    startWorker<ChaosClientsParams, ChaosClientsResult>(
      new URL('../../testkit/room-clients-worker.ts', import.meta.url),
      { proxyUrl: o.proxy.url, ca: o.proxy.ca, clients: share, silenceResyncMs: 5000 },
      // The client library uses the global fetch, which trusts only what Node was started with.
      { env: { NODE_EXTRA_CA_CERTS: o.proxy.certFile } },
    ),
  );
  const workers: WorkerHandle<unknown>[] = [...clients];
  try {
    await Promise.all(clients.map((c) => c.ready));
    await waitAllLive(clients, clientSpecs.length, 'start', 60_000);
    say(`${clientSpecs.length} clients live in ${o.processes} processes`);

    const poster = startWorker<ChaosPosterParams, ChaosPosterResult>(new URL('./chaos-poster.ts', import.meta.url), {
      proxyUrl: o.proxy.url,
      ca: o.proxy.ca,
      rooms: made.map((r) => ({
        roomId: r.id,
        instructor: { userId: r.instructor.id, token: r.instructor.token },
        learners: r.learners.slice(o.viewers).map((l) => ({ userId: l.id, token: l.token })),
      })),
      ratePerSecond: o.rate,
      retryForMs: 60_000,
    });
    workers.push(poster);
    await poster.ready;
    const { faultTimes, faultFailures } = await runSchedule(clients, faults, o);
    say('stopping posters; waiting for retries to settle');
    const posted = await poster.stop();
    await repair();

    // Every client reconnects once more, which resyncs it, then the views are final.
    say('final resync: cutting every client socket once');
    await sleep(2000);
    for (const c of clients) await c.request({ type: 'cut', count: 1_000_000 });
    await sleep(1000);
    await waitAllLive(clients, clientSpecs.length, 'final resync', 90_000);
    await sleep(3000);
    const results = await Promise.all(clients.map((c) => c.stop()));
    const views = results.flatMap((r) => r.views);
    const stored = await storedMessages(services, made);

    const verdict = verify(posted.posts, stored, views);
    const convergence = faultTimes.map((f) => ({ ...f, worstDelayMs: convergenceAfter(f.at, 5000, stored, views) }));
    const conv = summarize(convergence.map((c) => c.worstDelayMs ?? 0));
    const pass = verdict.pass && faultFailures === 0;
    const lines = [
      '',
      `posts: ${verdict.posts}, accepted (201): ${verdict.accepted}, never accepted: ${verdict.neverAccepted}, retried errors: ${JSON.stringify(posted.retriedErrors)}`,
      `stored rows: ${stored.length}; 201s missing from Postgres: ${verdict.acceptedMissingInDb}; 201s that differ from the row: ${verdict.acceptedMismatched}; rows no POST asked for: ${verdict.storedNotAsked}`,
      `clients: ${verdict.clientsExact}/${verdict.clients} hold exactly what they may see, in order; missing ${verdict.missing}, extra ${verdict.extra}, duplicates ${verdict.duplicates}, out of order ${verdict.outOfOrder}`,
      `instructors complete (queue + resync): ${verdict.instructorsComplete}; socket cuts: ${results.reduce((n, r) => n + r.cuts, 0)}`,
      `published late by an outbox relay: ${stored.filter((m) => m.relayAttempts > 0).length} message(s)`,
      'faults (worst commit→shown delay of messages committed in the 5 s after each):',
      ...convergence.map((c) => `  ${c.name.padEnd(40)} ${c.worstDelayMs === null ? 'no messages' : `${(c.worstDelayMs / 1000).toFixed(2)} s`}`),
      `convergence after faults: p50 ${(conv.p50 / 1000).toFixed(2)} s, max ${(conv.max / 1000).toFixed(2)} s`,
      ...verdict.problems.map((p) => `  problem: ${p}`),
      ...explainMissing(stored, views).map((l) => `  missing: ${l}`),
      '',
      faultFailures > 0 ? `${faultFailures} fault(s) could not be injected` : 'every fault was injected',
    ];
    return { lines, pass };
  } finally {
    // After a failure the workers still run; one that has stopped ignores the kill.
    for (const w of workers) {
      w.done.catch(() => undefined);
      w.kill();
    }
  }
}

type Clients = WorkerHandle<ChaosClientsResult>[];

async function states(clients: Clients): Promise<Record<string, number>> {
  const all: Record<string, number> = {};
  for (const r of await Promise.all(clients.map((c) => c.request({ type: 'states' })))) {
    for (const [k, v] of Object.entries(r as Record<string, number>)) all[k] = (all[k] ?? 0) + v;
  }
  return all;
}

async function waitAllLive(clients: Clients, count: number, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await states(clients);
    if ((s.live ?? 0) === count) return;
    if (Date.now() > deadline) throw new Error(`${what}: not all clients live after ${timeoutMs / 1000} s: ${JSON.stringify(s)}`);
    await sleep(500);
  }
}

/** Posting time: the faults at their moments, client sockets cut every 4 s, states every 5 s. */
async function runSchedule(clients: Clients, faults: Fault[], o: LoadOptions): Promise<{ faultTimes: { name: string; at: number }[]; faultFailures: number }> {
  const { say } = o;
  const postStart = Date.now();
  const faultTimes: { name: string; at: number }[] = [];
  let faultFailures = 0;
  const ticker = setInterval(() => {
    void states(clients).then((s) => say(`clients ${JSON.stringify(s)}`), () => undefined);
  }, 5000);
  const cutter = setInterval(() => {
    for (const c of clients) void c.request({ type: 'cut', count: 1 }).catch(() => undefined);
  }, 4000);
  try {
    for (const f of faults) {
      const due = postStart + f.at * o.durationMs;
      if (due > Date.now()) await sleep(due - Date.now());
      say(`FAULT ${f.name}`);
      const at = Date.now();
      try {
        await f.run();
        say(`      ${f.name}: done in ${((Date.now() - at) / 1000).toFixed(1)} s`);
      } catch (err) {
        say(`      ${f.name}: FAILED: ${(err as Error).message}`);
        faultFailures++;
      }
      faultTimes.push({ name: f.name, at });
    }
    const end = postStart + o.durationMs;
    if (end > Date.now()) await sleep(end - Date.now());
  } finally {
    clearInterval(cutter);
    clearInterval(ticker);
  }
  return { faultTimes, faultFailures };
}

/** The rows of the run's rooms, with when each was published and whether a relay did it. */
async function storedMessages(services: Services, made: BenchRoom[]): Promise<StoredMessage[]> {
  const { rows } = await services.pool.query<{
    id: string; room_id: string; seq: number; sender_id: string; audience: string; recipient_id: string | null; client_msg_id: string; created_at: Date;
    published_at: Date | null; attempts: number | null;
  }>(
    // A publish job's first attempt is the send request's; every later one is a relay's claim.
    `SELECT m.id, m.room_id, m.seq, m.sender_id, m.audience, m.recipient_id, m.client_msg_id, m.created_at,
            CASE WHEN j.state = 'done' THEN j.finished_at END AS published_at, greatest(j.attempts - 1, 0) AS attempts
       FROM messages m LEFT JOIN jobs j ON j.queue = 'publish' AND j.ref = m.id::text WHERE m.room_id = ANY($1::uuid[])`,
    [made.map((r) => r.id)],
  );
  return rows.map((r) => ({
    id: r.id, roomId: r.room_id, seq: r.seq, senderId: r.sender_id, audience: r.audience, recipientId: r.recipient_id, clientMsgId: r.client_msg_id, createdAt: r.created_at.getTime(),
    publishedAt: r.published_at?.getTime() ?? null, relayAttempts: r.attempts ?? 0,
  }));
}
