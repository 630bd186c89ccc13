/**
 * `npm run bench:interactions`: a class of N learners (500 by default) and its instructor, as
 * headless room clients on the page's client library through the TLS proxy (issue 18).
 *
 * 1. Presence: the instructor's client is live; then every learner opens the room at once, and
 *    then 20 more one by one. Per learner, the time from opening the room to the instructor's
 *    list showing them.
 * 2. A poll of the whole class: opened, answered by every learner at once. Per answer, the time
 *    from its commit to the instructor's client holding it (its tally counted it); and from the
 *    last answer's commit to the instructor's tally being complete.
 *
 * Starts what it needs (the test profile's or npm start's services, app servers and proxy) and
 * stops what it started. Writes bench/results/interactions-<time>.json and .md.
 */
import { parseCli } from '../runtime/cli-args';
import { loadConfig } from '../runtime/config';
import { ensureSystem, stopFrontEnds } from '../infra/system';
import { createLogger } from '../server/src/logger';
import { buildServices } from '../server/src/services';
import { makeBenchRooms } from '../testkit/roomcast-fixtures';
import { roundSummary, summarize } from '../testkit/stats';
import { waitFor } from '../testkit/stomp';
import { startWorker, type WorkerHandle } from '../testkit/workers';
import type { ChaosClientSpec, ChaosClientsParams, ChaosClientsResult } from '../testkit/room-clients-worker';
import { machineFacts } from './lib/machine';
import { progress, sleep } from './lib/progress';
import { writeBenchResults } from './lib/results-file';

const USAGE = `
npm run bench:interactions -- [options]

  --learners N    learners in the room (10-2000, default 500)
  --processes N   child processes the learners' clients run in (1-16, default 4)
`;
const cli = parseCli({ learners: { type: 'string', default: '500' }, processes: { type: 'string', default: '4' } }, USAGE);
const learners = cli.integer('learners', 10, 2000);
const processes = cli.integer('processes', 1, 16);
const { say, log } = progress();
const LATE = 20;


async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'warn' });
  const { proxy, ca, started } = await ensureSystem(config, log);
  const services = buildServices(config, createLogger({ logLevel: 'silent' }, 'bench-interactions'));
  const workers: WorkerHandle<ChaosClientsResult>[] = [];
  const startedAt = new Date().toISOString();
  try {
    // LATE more learners open the room one by one once the class is in: presence at 500 members.
    const [room] = await makeBenchRooms(services, 1, learners + LATE);
    if (!room) throw new Error('no room');
    const worker = (clients: ChaosClientSpec[]): WorkerHandle<ChaosClientsResult> => {
      const w = startWorker<ChaosClientsParams, ChaosClientsResult>(
        new URL('../testkit/room-clients-worker.ts', import.meta.url),
        { proxyUrl: proxy.url, ca, clients, silenceResyncMs: 30_000 },
        { env: { NODE_EXTRA_CA_CERTS: proxy.certFile } },
      );
      workers.push(w);
      return w;
    };
    const live = async (ws: WorkerHandle<ChaosClientsResult>[], n: number): Promise<boolean> => {
      const counts = await Promise.all(ws.map((w) => w.request({ type: 'states' }) as Promise<Record<string, number>>));
      return counts.reduce((sum, s) => sum + (s.live ?? 0), 0) === n;
    };

    // 1. Presence: the instructor first, then the whole class at once.
    const teacher = worker([{ userId: room.instructor.id, roomId: room.id, token: room.instructor.token, role: 'instructor' }]);
    await teacher.ready;
    await waitFor(() => live([teacher], 1), 'the instructor live', 30_000, 200);
    say(`presence: ${learners} learners open the room at once`);
    const shares: ChaosClientSpec[][] = Array.from({ length: processes }, () => []);
    room.learners.slice(0, learners).forEach((l, i) => shares[i % processes]?.push({ userId: l.id, roomId: room.id, token: l.token, role: 'learner' }));
    const classWorkers = shares.map(worker);
    await Promise.all(classWorkers.map((w) => w.ready));
    await waitFor(() => live(classWorkers, learners), 'every learner live', 180_000, 200);
    await sleep(2000);
    say(`presence: ${LATE} more learners open the room, one every 500 ms`);
    const lateWorkers: WorkerHandle<ChaosClientsResult>[] = [];
    for (const l of room.learners.slice(learners)) {
      lateWorkers.push(worker([{ userId: l.id, roomId: room.id, token: l.token, role: 'learner' }]));
      await sleep(500);
    }
    await Promise.all(lateWorkers.map((w) => w.ready));
    await waitFor(() => live(lateWorkers, LATE), 'the late learners live', 60_000, 200);

    // 2. A poll of the whole class.
    const pollId = `bench-${Date.now().toString(36)}`;
    await teacher.request({ type: 'act', role: 'instructor', audience: 'everyone', body: { type: 'poll.open', pollId, question: 'Ready?', choices: ['Yes', 'No', 'Not sure'] } });
    await sleep(1500);
    say(`poll: ${learners} learners answer at once`);
    await Promise.all(classWorkers.map((w) => w.request({ type: 'act', role: 'learner', audience: 'instructors', body: { type: 'poll.answer', pollId }, spreadChoices: 3 })));
    const answers = async (): Promise<{ id: string; created_at: Date }[]> =>
      (await services.pool.query<{ id: string; created_at: Date }>(`SELECT id, created_at FROM messages WHERE room_id = $1 AND kind = 'action' AND body->>'type' = 'poll.answer' AND body->>'pollId' = $2`, [room.id, pollId])).rows;
    await waitFor(async () => (await answers()).length === learners, 'every answer stored', 180_000, 200);
    await sleep(3000);

    const teacherView = (await teacher.stop()).views[0];
    const classViews = (await Promise.all(classWorkers.map((w) => w.stop()))).flatMap((r) => r.views);
    const lateViews = (await Promise.all(lateWorkers.map((w) => w.stop()))).flatMap((r) => r.views);
    workers.length = 0;
    if (!teacherView) throw new Error('no instructor view');

    const joinToShownOf = (views: typeof classViews): number[] =>
      views.flatMap((v) => {
        const opened = v.timeline[0]?.[0];
        const shown = teacherView.presence.find(([, , members]) => members?.includes(v.userId))?.[0];
        return opened !== undefined && shown !== undefined ? [Math.max(0, shown - opened)] : [];
      });
    const joinToShown = joinToShownOf(classViews);
    const lateJoinToShown = joinToShownOf(lateViews);
    const stored = await answers();
    const answerToTally = stored.flatMap((a) => (teacherView.shownAt[a.id] === undefined ? [] : [(teacherView.shownAt[a.id] as number) - a.created_at.getTime()]));
    const last = stored.reduce((a, b) => (a.created_at > b.created_at ? a : b));
    const tallyComplete = Math.max(...stored.map((a) => teacherView.shownAt[a.id] ?? Number.NaN)) - last.created_at.getTime();
    const firstSent = Math.min(...stored.map((a) => a.created_at.getTime()));
    const results = {
      machine: machineFacts(),
      startedAt,
      learners,
      presence: {
        shownOf: joinToShown.length,
        joinToShownMs: roundSummary(summarize(joinToShown)),
        lateShownOf: lateJoinToShown.length,
        lateJoinToShownMs: roundSummary(summarize(lateJoinToShown)),
      },
      poll: {
        answersStoredInMs: last.created_at.getTime() - firstSent,
        heldOf: answerToTally.length,
        answerToInstructorMs: roundSummary(summarize(answerToTally)),
        lastAnswerToCompleteTallyMs: Math.round(tallyComplete),
      },
    };
    const p = results.presence.joinToShownMs;
    const lp = results.presence.lateJoinToShownMs;
    const a = results.poll.answerToInstructorMs;
    writeBenchResults(
      {
        name: 'interactions',
        title: 'roomcast interactions benchmark',
        startedAt,
        machine: results.machine,
        setup: `One room: ${learners} learners and an instructor, each a headless client through the TLS proxy; ${processes} client processes.`,
        rows: [
          [`presence: ${learners} learners open the room in the same second → the instructor's list shows each (${joinToShown.length} of ${learners})`, `p50 ${p.p50} ms, p99 ${p.p99} ms, max ${p.max} ms`],
          [`presence: with ${learners} in, one more opens the room → the instructor's list shows them (${lateJoinToShown.length} of ${LATE}, one every 500 ms)`, `p50 ${lp.p50} ms, p99 ${lp.p99} ms, max ${lp.max} ms`],
          [`poll: ${learners} answers sent at once, stored`, `in ${results.poll.answersStoredInMs} ms (first to last commit)`],
          [`poll: an answer's commit → on the instructor's tally (${answerToTally.length} of ${learners})`, `p50 ${a.p50} ms, p99 ${a.p99} ms, max ${a.max} ms`],
          ['poll: last answer committed → the instructor\u2019s tally complete', `${results.poll.lastAnswerToCompleteTallyMs} ms`],
        ],
      },
      results,
    );
  } finally {
    await Promise.allSettled(workers.map((w) => w.stop()));
    await services.close();
    if (started) await stopFrontEnds(config, log);
  }
}

main().catch((err: unknown) => {
  say(`error: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
