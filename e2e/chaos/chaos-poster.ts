/**
 * Chaos worker: posts at a steady rate through the proxy until told to stop, with a mix of
 * audiences (broadcasts, questions to instructors, direct replies). A failed POST (network
 * error, 5xx, 429) is retried with the SAME client message id until it gets its 201, as a
 * browser's send queue does. Every attempt's outcome is recorded for the final checks.
 */
import { randomUUID } from 'node:crypto';
import { HttpClient } from '../../testkit/http-client';
import { workerMain } from '../../testkit/workers';

export interface ChaosRoomSpec {
  roomId: string;
  instructor: { userId: string; token: string };
  learners: { userId: string; token: string }[];
}

export interface ChaosPosterParams {
  proxyUrl: string;
  ca: string;
  rooms: ChaosRoomSpec[];
  ratePerSecond: number;
  /** Give up retrying one message after this long (then it counts as never accepted). */
  retryForMs: number;
}

export interface PostRecord {
  clientMsgId: string;
  roomId: string;
  senderId: string;
  audience: 'everyone' | 'instructors' | 'member';
  firstAttemptAt: number;
  attempts: number;
  /** Set once a 201 arrived. */
  accepted?: { id: string; seq: number; at: number };
  lastError?: string;
}

export interface ChaosPosterResult {
  posts: PostRecord[];
  retriedErrors: Record<string, number>;
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;

workerMain<ChaosPosterParams, ChaosPosterResult>(async (p, stopped, ready) => {
  const http = new HttpClient(p.proxyUrl, { ca: p.ca, maxSockets: 32 });
  const posts: PostRecord[] = [];
  const retriedErrors: Record<string, number> = {};
  let stopping = false;
  void stopped.then(() => (stopping = true));

  const post = async (rec: PostRecord, token: string, body: Record<string, unknown>): Promise<void> => {
    for (;;) {
      rec.attempts++;
      try {
        const res = await http.request('POST', `/api/rooms/${rec.roomId}/messages`, body, { authorization: `Bearer ${token}` });
        if (res.status === 201) {
          const b = res.body as { id: string; seq: number };
          rec.accepted = { id: b.id, seq: b.seq, at: Date.now() };
          return;
        }
        rec.lastError = `${res.status} ${JSON.stringify(res.body).slice(0, 200)}`;
        if (res.status < 500 && res.status !== 429) return; // a 4xx is final: never retried
        retriedErrors[String(res.status)] = (retriedErrors[String(res.status)] ?? 0) + 1;
      } catch (err) {
        rec.lastError = (err as Error).message;
        retriedErrors.network = (retriedErrors.network ?? 0) + 1;
      }
      if (Date.now() - rec.firstAttemptAt > p.retryForMs) return;
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
    }
  };

  ready();
  const inFlight: Promise<void>[] = [];
  const started = Date.now();
  for (let i = 0; !stopping; i++) {
    const due = started + (i * 1000) / p.ratePerSecond;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (stopping) break;
    const room = pick(p.rooms);
    const roll = Math.random();
    const learner = pick(room.learners);
    const kind = roll < 0.7 ? 'everyone' : roll < 0.9 ? 'instructors' : 'member';
    const sender = kind === 'member' ? room.instructor : learner;
    const rec: PostRecord = { clientMsgId: randomUUID(), roomId: room.roomId, senderId: sender.userId, audience: kind, firstAttemptAt: Date.now(), attempts: 0 };
    posts.push(rec);
    const body = {
      clientMsgId: rec.clientMsgId,
      audience: kind,
      ...(kind === 'member' ? { recipientId: learner.userId } : {}),
      kind: kind === 'instructors' ? 'question' : kind === 'member' ? 'answer' : 'chat',
      body: { text: `chaos ${i}` },
    };
    inFlight.push(post(rec, sender.token, body));
  }
  await Promise.all(inFlight);
  http.close();
  return { posts, retriedErrors };
});
