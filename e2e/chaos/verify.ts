/**
 * The chaos run's verdict, computed from Postgres (the record), the posters' log of every POST,
 * and every client's final view. Pure functions: they only compare.
 */
import type { ChaosClientView } from '../../testkit/room-clients-worker';
import type { PostRecord } from './chaos-poster';

export interface StoredMessage {
  id: string;
  roomId: string;
  seq: number;
  senderId: string;
  audience: string;
  recipientId: string | null;
  clientMsgId: string;
  createdAt: number;
  /** When the broker's confirm was recorded (its publish job done); null if never. */
  publishedAt: number | null;
  /** How many times an outbox relay claimed it (0: published by the send request). */
  relayAttempts: number;
}

export interface Verdict {
  pass: boolean;
  posts: number;
  accepted: number;
  neverAccepted: number;
  acceptedMissingInDb: number;
  acceptedMismatched: number;
  storedNotAsked: number;
  clients: number;
  clientsExact: number;
  missing: number;
  extra: number;
  duplicates: number;
  outOfOrder: number;
  instructorsComplete: string;
  problems: string[];
}

const visibleTo = (m: StoredMessage, v: ChaosClientView): boolean =>
  v.role === 'instructor' || m.audience === 'everyone' || m.senderId === v.userId || m.recipientId === v.userId;

export function verify(posts: PostRecord[], stored: StoredMessage[], views: ChaosClientView[]): Verdict {
  const problems: string[] = [];
  const note = (p: string): void => {
    if (problems.length < 20) problems.push(p);
  };
  const byKey = new Map(stored.map((m) => [`${m.roomId}/${m.senderId}/${m.clientMsgId}`, m]));
  const asked = new Set(posts.map((p) => `${p.roomId}/${p.senderId}/${p.clientMsgId}`));

  let acceptedMissingInDb = 0;
  let acceptedMismatched = 0;
  const accepted = posts.filter((p) => p.accepted);
  for (const p of accepted) {
    const m = byKey.get(`${p.roomId}/${p.senderId}/${p.clientMsgId}`);
    if (!m) {
      acceptedMissingInDb++;
      note(`201 for ${p.clientMsgId} but no row`);
    } else if (m.id !== p.accepted?.id || m.seq !== p.accepted.seq) {
      acceptedMismatched++;
      note(`201 for ${p.clientMsgId} said ${p.accepted?.id}/${p.accepted?.seq}, row is ${m.id}/${m.seq}`);
    }
  }
  const storedNotAsked = stored.filter((m) => !asked.has(`${m.roomId}/${m.senderId}/${m.clientMsgId}`)).length;
  if (storedNotAsked > 0) note(`${storedNotAsked} stored rows no POST asked for`);
  const neverAccepted = posts.length - accepted.length;
  for (const p of posts.filter((x) => !x.accepted).slice(0, 3)) note(`never accepted: ${p.clientMsgId} (${p.lastError ?? '?'})`);

  const byRoom = new Map<string, StoredMessage[]>();
  for (const m of stored) byRoom.set(m.roomId, [...(byRoom.get(m.roomId) ?? []), m]);
  for (const list of byRoom.values()) list.sort((a, b) => a.seq - b.seq);

  let missing = 0;
  let extra = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let exact = 0;
  let instructorsOk = 0;
  const instructors = views.filter((v) => v.role === 'instructor').length;
  for (const v of views) {
    const expected = (byRoom.get(v.roomId) ?? []).filter((m) => visibleTo(m, v)).map((m) => m.id);
    const expectedSet = new Set(expected);
    const seen = new Set<string>();
    let d = 0;
    for (const id of v.ids) {
      if (seen.has(id)) d++;
      seen.add(id);
    }
    const miss = expected.filter((id) => !seen.has(id)).length;
    const ext = [...seen].filter((id) => !expectedSet.has(id)).length;
    const order = v.ids.filter((id) => expectedSet.has(id));
    const inOrder = order.every((id, i) => i === 0 || expected.indexOf(order[i - 1] as string) < expected.indexOf(id));
    missing += miss;
    extra += ext;
    duplicates += d;
    if (!inOrder) outOfOrder++;
    const ok = miss === 0 && ext === 0 && d === 0 && inOrder;
    if (ok) exact++;
    else note(`${v.role} ${v.userId.slice(0, 8)} in room ${v.roomId.slice(0, 8)}: missing ${miss}, extra ${ext}, dup ${d}, ordered ${inOrder} (state ${v.finalState})`);
    if (ok && v.role === 'instructor') instructorsOk++;
  }
  const pass =
    acceptedMissingInDb === 0 && acceptedMismatched === 0 && storedNotAsked === 0 && neverAccepted === 0 && exact === views.length;
  return {
    pass,
    posts: posts.length,
    accepted: accepted.length,
    neverAccepted,
    acceptedMissingInDb,
    acceptedMismatched,
    storedNotAsked,
    clients: views.length,
    clientsExact: exact,
    missing,
    extra,
    duplicates,
    outOfOrder,
    instructorsComplete: `${instructorsOk}/${instructors}`,
    problems,
  };
}

const clock = (ms: number): string => new Date(ms).toISOString().slice(11, 23);

/** The client's connection state at `at`, and since when. */
function stateAt(v: ChaosClientView, at: number): string {
  let current: [number, string] | undefined;
  for (const entry of v.timeline) {
    if (entry[0] > at) break;
    current = entry;
  }
  return current ? `${current[1]} since ${clock(current[0])}` : 'not started';
}

/**
 * One line per message a client should hold and does not, so a failure explains itself: its
 * seq and audience, when it was committed and published (and by which path), and what the
 * client was doing when it was published.
 */
export function explainMissing(stored: StoredMessage[], views: ChaosClientView[], limit = 30): string[] {
  const lines: string[] = [];
  let total = 0;
  for (const v of views) {
    const held = new Set(v.ids);
    for (const m of stored) {
      if (m.roomId !== v.roomId || !visibleTo(m, v) || held.has(m.id)) continue;
      total++;
      if (lines.length >= limit) continue;
      const published =
        m.publishedAt === null
          ? 'never published'
          : `published ${clock(m.publishedAt)} (+${((m.publishedAt - m.createdAt) / 1000).toFixed(2)} s, ${m.relayAttempts > 0 ? `relay, ${m.relayAttempts} claim(s)` : 'send request'})`;
      lines.push(
        `${v.role} ${v.userId.slice(0, 8)} in room ${v.roomId.slice(0, 8)} misses seq ${m.seq} (${m.audience}): committed ${clock(m.createdAt)}, ${published}; the client was then ${m.publishedAt === null ? '-' : stateAt(v, m.publishedAt)}`,
      );
    }
  }
  if (total > lines.length) lines.push(`… and ${total - lines.length} more missing`);
  return lines;
}

/**
 * Worst delivery delay after each fault: over every client and every message it may see that
 * was committed in the `windowMs` after the fault, the time from commit to being shown.
 */
export function convergenceAfter(faultAt: number, windowMs: number, stored: StoredMessage[], views: ChaosClientView[]): number | null {
  let worst: number | null = null;
  for (const v of views) {
    for (const m of stored) {
      if (m.roomId !== v.roomId || m.createdAt < faultAt || m.createdAt > faultAt + windowMs || !visibleTo(m, v)) continue;
      const shown = v.shownAt[m.id];
      if (shown === undefined) continue;
      worst = Math.max(worst ?? 0, shown - m.createdAt);
    }
  }
  return worst;
}
