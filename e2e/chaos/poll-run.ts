/**
 * `npm run test:poll`: a poll of a whole class under a broker fault (issue 18). A room of N
 * learners (500 by default) and its instructor, each a headless room client built on the web
 * page's client library, through the TLS proxy. The instructor opens a poll; every learner
 * answers within about a second, as the page's Answer button does; meanwhile a RabbitMQ node is
 * killed with SIGKILL; the instructor closes the poll; the node comes back. Then:
 * - the tally in the close message equals the answers stored in Postgres (each learner once);
 * - every client, folding what it holds (`room-state.ts`), shows exactly that tally, closed;
 * - no learner ever held another learner's answer.
 * It prints the time from the last stored answer to the close on every page. Exit code 0 only
 * on PASS; it stops whatever it started, also when it fails.
 *
 *   npm run test:poll -- [--learners 500] [--processes 4]
 */
import { parseCli } from '../../runtime/cli-args';
import { loadConfig } from '../../runtime/config';
import { killNode, startNode, type Logger } from '../../infra/index';
import { ensureSystem, stopFrontEnds } from '../../infra/system';
import type { RoomMessage } from '../../shared/protocol/messages';
import { RoomStateFold } from '../../shared/protocol/room-state';
import { createLogger } from '../../server/src/logger';
import { buildServices } from '../../server/src/services';
import { makeBenchRooms } from '../../testkit/roomcast-fixtures';
import { summarize } from '../../testkit/stats';
import { waitFor } from '../../testkit/stomp';
import { startWorker } from '../../testkit/workers';
import type { ChaosClientSpec, ChaosClientsParams, ChaosClientsResult } from '../../testkit/room-clients-worker';

const USAGE = `
npm run test:poll -- [options]

A poll answered by a whole class while a broker node is killed; exit code 0 only on PASS.

  --learners N    learners in the room (10-2000, default 500)
  --processes N   child processes the clients run in (1-16, default 4)
`;
const cli = parseCli({ learners: { type: 'string', default: '500' }, processes: { type: 'string', default: '4' } }, USAGE);
const learners = cli.integer('learners', 10, 2000);
const processes = cli.integer('processes', 1, 16);

const t0 = Date.now();
const say = (line: string): void => void process.stdout.write(`[poll ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
const log: Logger = { info: say, warn: (m) => say(`warning: ${m}`) };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


async function main(): Promise<number> {
  const config = loadConfig({ ...process.env, ROOMCAST_LOG_LEVEL: process.env.ROOMCAST_LOG_LEVEL ?? 'warn' });
  const { proxy, ca, started: stopAfter } = await ensureSystem(config, log);
  const services = buildServices(config, createLogger({ logLevel: 'silent' }, 'poll-run'));
  const workers: { stop(): Promise<ChaosClientsResult> }[] = [];
  let node1Down = false;
  try {
    await services.broker.ready(10_000);
    const [room] = await makeBenchRooms(services, 1, learners);
    if (!room) throw new Error('no room');
    const specs: ChaosClientSpec[] = [
      { userId: room.instructor.id, roomId: room.id, token: room.instructor.token, role: 'instructor' },
      ...room.learners.map((l) => ({ userId: l.id, roomId: room.id, token: l.token, role: 'learner' as const })),
    ];
    const shares: ChaosClientSpec[][] = Array.from({ length: processes }, () => []);
    specs.forEach((c, i) => shares[i % processes]?.push(c));
    const clients = shares.map((share) =>
      startWorker<ChaosClientsParams, ChaosClientsResult>(
        new URL('../../testkit/room-clients-worker.ts', import.meta.url),
        { proxyUrl: proxy.url, ca, clients: share, silenceResyncMs: 5000 },
        { env: { NODE_EXTRA_CA_CERTS: proxy.certFile } },
      ),
    );
    workers.push(...clients);
    await Promise.all(clients.map((c) => c.ready));
    const allLive = async (): Promise<boolean> => {
      const counts = await Promise.all(clients.map((c) => c.request({ type: 'states' }) as Promise<Record<string, number>>));
      return counts.reduce((n, s) => n + (s.live ?? 0), 0) === specs.length;
    };
    await waitFor(allLive, 'every client live', 120_000, 200);
    say(`${specs.length} clients live in ${processes} processes`);

    const pollId = `class-${Date.now().toString(36)}`;
    const act = (role: 'instructor' | 'learner', audience: 'everyone' | 'instructors', body: Record<string, unknown>): Promise<unknown[]> =>
      Promise.all(clients.map((c) => c.request({ type: 'act', role, audience, body })));
    await act('instructor', 'everyone', { type: 'poll.open', pollId, question: 'Ready for the test?', choices: ['Yes', 'No', 'Not sure'] });
    const stored = async (type: string): Promise<number> =>
      Number((await services.pool.query(`SELECT count(*) AS n FROM messages WHERE room_id = $1 AND kind = 'action' AND body->>'pollId' = $2 AND body->>'type' = $3`, [room.id, pollId, type])).rows[0].n);
    await waitFor(async () => (await stored('poll.open')) === 1, 'the poll stored', 20_000, 200);
    await sleep(1000); // every client holds the open poll before answering, as a page shows it first

    // Every learner answers, each its own choice; the node dies meanwhile.
    const answersAt = Date.now();
    await Promise.all(clients.map((c) => c.request({ type: 'act', role: 'learner', audience: 'instructors', body: { type: 'poll.answer', pollId }, spreadChoices: 3 })));
    await sleep(150);
    await killNode(config, 1);
    node1Down = true;
    say('answers sent; rabbitmq node 1 killed (SIGKILL)');
    await waitFor(async () => (await stored('poll.answer')) >= learners, `${learners} answers stored`, 120_000, 200);
    const lastAnswer = Number((await services.pool.query(`SELECT extract(epoch FROM max(created_at)) * 1000 AS t FROM messages WHERE room_id = $1 AND body->>'type' = 'poll.answer' AND body->>'pollId' = $2`, [room.id, pollId])).rows[0].t);
    say(`${learners} answers stored, the last ${((lastAnswer - answersAt) / 1000).toFixed(2)} s after the first was sent`);
    await act('instructor', 'everyone', { type: 'poll.close', pollId });
    await waitFor(async () => (await stored('poll.close')) === 1, 'the close stored', 30_000, 200);
    await startNode(config, 1, log);
    node1Down = false;
    say('poll closed; node 1 restarted');
    await waitFor(allLive, 'every client live again', 120_000, 200);
    await sleep(6000); // a client that missed the close resyncs after its 5 s of silence

    const closeRow = (await services.pool.query<{ id: string; body: { tally: number[]; answered: number }; created_at: Date }>(`SELECT id, body, created_at FROM messages WHERE room_id = $1 AND body->>'type' = 'poll.close' AND body->>'pollId' = $2`, [room.id, pollId])).rows[0];
    if (!closeRow) throw new Error('no close stored');
    const { rows: answers } = await services.pool.query<{ sender_id: string; choice: number; n: number }>(
      `SELECT sender_id, (body->'choices'->>0)::int AS choice, count(*) OVER (PARTITION BY sender_id)::int AS n FROM messages
        WHERE room_id = $1 AND body->>'type' = 'poll.answer' AND body->>'pollId' = $2`,
      [room.id, pollId],
    );
    const storedTally = [0, 1, 2].map((c) => answers.filter((a) => a.choice === c).length);
    const problems: string[] = [];
    if (answers.some((a) => a.n !== 1)) problems.push('a learner has more than one stored answer');
    if (answers.length !== learners) problems.push(`${answers.length} answers stored, ${learners} expected`);
    if (JSON.stringify(closeRow.body.tally) !== JSON.stringify(storedTally) || closeRow.body.answered !== answers.length) {
      problems.push(`the close says ${JSON.stringify(closeRow.body.tally)} of ${closeRow.body.answered}; stored answers say ${JSON.stringify(storedTally)} of ${answers.length}`);
    }

    const results = await Promise.all(clients.map((c) => c.stop()));
    workers.length = 0;
    const views = results.flatMap((r) => r.views);
    const ids = [...new Set(views.flatMap((v) => v.ids))];
    const byId = new Map((await services.messages.byIds(ids)).map((m) => [m.id, m] as [string, RoomMessage]));
    const shownCloseAt: number[] = [];
    let wrong = 0;
    let leaked = 0;
    for (const v of views) {
      const fold = new RoomStateFold({ userId: v.userId, role: v.role });
      for (const id of v.ids) {
        const m = byId.get(id);
        if (!m) continue;
        if (v.role === 'learner' && m.body.type === 'poll.answer' && m.senderId !== v.userId) leaked++;
        fold.apply(m);
      }
      const poll = fold.state.polls.find((p) => p.pollId === pollId);
      if (!poll || poll.open || JSON.stringify(poll.tally) !== JSON.stringify(storedTally) || poll.answered !== answers.length) wrong++;
      const at = v.shownAt[closeRow.id];
      if (at !== undefined) shownCloseAt.push(at - closeRow.created_at.getTime());
    }
    if (wrong > 0) problems.push(`${wrong} of ${views.length} clients do not show the closed poll with the stored tally`);
    if (leaked > 0) problems.push(`learners held ${leaked} answers of other learners`);
    // The instructor's console counts live: the last answer on its screen is its tally complete.
    const lastAnswerRow = (await services.pool.query<{ id: string; created_at: Date }>(`SELECT id, created_at FROM messages WHERE room_id = $1 AND body->>'type' = 'poll.answer' AND body->>'pollId' = $2 ORDER BY seq DESC LIMIT 1`, [room.id, pollId])).rows[0];
    const instructorView = views.find((v) => v.role === 'instructor');
    const tallyShownMs = lastAnswerRow && instructorView?.shownAt[lastAnswerRow.id] !== undefined ? (instructorView.shownAt[lastAnswerRow.id] as number) - lastAnswerRow.created_at.getTime() : null;
    say(`last answer committed → on the instructor's tally: ${tallyShownMs === null ? 'never' : `${tallyShownMs} ms`}`);
    if (tallyShownMs === null) problems.push('the instructor never received the last answer');
    const shown = summarize(shownCloseAt);
    say(`stored tally ${JSON.stringify(storedTally)}; ${views.length - wrong}/${views.length} clients show it, closed`);
    say(`close committed → shown on every page: p50 ${Math.round(shown.p50)} ms, p99 ${Math.round(shown.p99)} ms, max ${Math.round(shown.max)} ms (${shownCloseAt.length} pages)`);
    for (const p of problems) say(`problem: ${p}`);
    say(problems.length === 0 ? 'PASS' : 'FAIL');
    return problems.length === 0 ? 0 : 1;
  } finally {
    await Promise.allSettled(workers.map((w) => w.stop()));
    if (node1Down) await startNode(config, 1, log).catch((err: unknown) => say(`warning: node 1 did not restart: ${(err as Error).message}`));
    await services.close();
    if (stopAfter) await stopFrontEnds(config, log);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`error: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
