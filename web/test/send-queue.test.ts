/**
 * The send queue against a scripted server (fake-room-server.ts) and fake time: what a refusal,
 * an outage, a Retry-After or a reload does to a person's messages.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Waker } from '../src/client/backoff';
import { MAX_RETRY_AFTER_MS, SendQueue, type OutgoingMessage, type OutgoingRequest } from '../src/client/send-queue';
import type { RoomClientError, StorageLike } from '../src/client/index';
import { FakeRoomServer, FakeStorage, ROOM_ID, USER_ID } from './fake-room-server';

/** Backoff of these tests: the first retry after 0.5-1 s, doubling, never more than 8 s. */
const BACKOFF = { initialMs: 1000, maxMs: 8000 };

const chat = (text: string): OutgoingRequest => ({ audience: 'everyone', kind: 'chat', body: { text } });

interface QueueOptions {
  storage?: () => StorageLike;
  userId?: string;
  roomId?: string;
}

function makeQueue(server: FakeRoomServer, options: QueueOptions = {}) {
  const errors: RoomClientError[] = [];
  const changes: { text: string; status: string }[] = [];
  const waker = new Waker();
  const queue = new SendQueue({
    post: server.post,
    onChange: (o: OutgoingMessage) => changes.push({ text: String(o.request.body.text), status: o.status }),
    onError: (err) => errors.push(err),
    backoff: BACKOFF,
    waker,
    persist: options.storage ? { storage: options.storage, userId: options.userId ?? USER_ID, roomId: options.roomId ?? ROOM_ID } : null,
  });
  return { queue, errors, changes, waker };
}

/** Lets every answer already due arrive (fetch and JSON parsing are promise chains). */
const flush = (): Promise<void> => vi.advanceTimersByTimeAsync(0).then(() => undefined);
const wait = (ms: number): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);

const refuse = { status: 413, code: 'body_too_large', message: 'message body is 20000 bytes; the limit is 16384' } as const;
const serverError = { status: 500, code: 'internal', message: 'internal error' } as const;

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('sending', () => {
  it('sends one message at a time, in the order they were queued', async () => {
    const server = new FakeRoomServer();
    server.latencyMs = 100;
    const { queue } = makeQueue(server);
    const sent = ['one', 'two', 'three'].map((t) => queue.enqueue(chat(t)));
    await wait(1000);
    expect(server.postedTexts()).toEqual(['one', 'two', 'three']);
    expect(server.maxInFlight).toBe(1);
    expect(sent.map((o) => o.status)).toEqual(['sent', 'sent', 'sent']);
    expect(sent.map((o) => o.message?.seq)).toEqual([1, 2, 3]);
    expect(queue.pending).toEqual([]);
  });
});

describe('a refused message', () => {
  it('is marked failed with the server code and message, never retried, and the messages after it are sent', async () => {
    const server = new FakeRoomServer();
    server.answer = (r) => (r.body.text === 'too big' ? refuse : 'store');
    const { queue, changes } = makeQueue(server);
    const refused = queue.enqueue(chat('too big'));
    const after = [queue.enqueue(chat('after 1')), queue.enqueue(chat('after 2'))];
    await flush();
    expect(refused.status).toBe('failed');
    expect(refused.error).toMatchObject({ code: 'body_too_large', message: refuse.message });
    expect(after.map((o) => o.status)).toEqual(['sent', 'sent']);
    expect(server.storedTexts()).toEqual(['after 1', 'after 2']);
    await wait(10 * 60_000);
    expect(server.attemptsOf(refused.clientMsgId)).toBe(1);
    expect(queue.pending).toEqual([refused]);
    expect(changes).toContainEqual({ text: 'too big', status: 'failed' });
  });

  it.each([
    [400, 'invalid_request'],
    [403, 'not_a_member'],
    [409, 'idempotency_conflict'],
    [413, 'body_too_large'],
    [422, 'invalid_request'],
  ])('a %i (%s) is a refusal', async (status, code) => {
    const server = new FakeRoomServer();
    server.answer = () => ({ status, code, message: `refused with ${status}` });
    const { queue } = makeQueue(server);
    const o = queue.enqueue(chat('x'));
    await flush();
    expect(o.status).toBe('failed');
    expect(o.error).toMatchObject({ code, message: `refused with ${status}` });
  });

  it('can be discarded: it leaves the queue and nothing is sent again', async () => {
    const server = new FakeRoomServer();
    server.answer = () => refuse;
    const { queue } = makeQueue(server);
    const o = queue.enqueue(chat('too big'));
    await flush();
    expect(queue.discard(o.clientMsgId)).toBe(true);
    expect(o.status).toBe('discarded');
    expect(queue.pending).toEqual([]);
    expect(queue.discard(o.clientMsgId)).toBe(false);
    await wait(60_000);
    expect(server.calls).toHaveLength(1);
  });

  it('can be taken back to edit; sending it again uses a new client message id', async () => {
    const server = new FakeRoomServer();
    // The server refuses this text; were it resent with the same id after an edit, it would answer 409 idempotency_conflict.
    server.answer = (r) => (r.body.text === 'why?' ? { status: 422, code: 'invalid_request', message: 'say more' } : 'store');
    const { queue } = makeQueue(server);
    const first = queue.enqueue({ audience: 'instructors', kind: 'question', body: { text: 'why?' } });
    await flush();
    expect(first.status).toBe('failed');

    const request = queue.edit(first.clientMsgId);
    expect(request).toEqual({ audience: 'instructors', kind: 'question', body: { text: 'why?' } });
    expect(first.status).toBe('discarded');
    expect(queue.pending).toEqual([]);

    const again = queue.enqueue({ ...request!, body: { text: 'why, exactly?' } });
    await flush();
    expect(again.clientMsgId).not.toBe(first.clientMsgId);
    expect(again.status).toBe('sent');
    expect(server.storedTexts()).toEqual(['why, exactly?']);
  });

  it('only a failed message can be discarded or edited: one still being sent may already be stored', async () => {
    const server = new FakeRoomServer();
    server.answer = () => 'network';
    const { queue } = makeQueue(server);
    const o = queue.enqueue(chat('in flight'));
    await flush();
    expect(queue.discard(o.clientMsgId)).toBe(false);
    expect(queue.edit(o.clientMsgId)).toBeNull();
    expect(o.status).toBe('sending');
  });
});

describe('transient failures', () => {
  it('a message failing with 5xx is retried with the same id while the messages after it are sent', async () => {
    const server = new FakeRoomServer();
    server.answer = (r, attempt) => (r.body.text === 'unlucky' && attempt <= 3 ? serverError : 'store');
    const { queue } = makeQueue(server);
    const unlucky = queue.enqueue(chat('unlucky'));
    const later = [queue.enqueue(chat('later 1')), queue.enqueue(chat('later 2'))];
    await flush();
    expect(unlucky.status).toBe('sending');
    expect(unlucky.error).toMatchObject({ code: 'internal' });
    expect(later.map((o) => o.status)).toEqual(['sent', 'sent']);

    await wait(1000 + 2000 + 4000);
    expect(unlucky.status).toBe('sent');
    expect(server.attemptsOf(unlucky.clientMsgId)).toBe(4);
    expect(server.calls.filter((c) => c.body.text === 'unlucky').map((c) => c.clientMsgId)).toEqual(Array(4).fill(unlucky.clientMsgId));
    expect(server.storedTexts()).toEqual(['later 1', 'later 2', 'unlucky']);
  });

  it('no answer (offline) is retried with the same id and backoff, and the order holds once the network is back', async () => {
    const server = new FakeRoomServer();
    let online = false;
    server.answer = () => (online ? 'store' : 'network');
    const { queue, waker } = makeQueue(server);
    const sent = ['a', 'b', 'c'].map((t) => queue.enqueue(chat(t)));
    await flush();
    expect(server.postedTexts()).toEqual(['a', 'b', 'c']);
    expect(sent.every((o) => o.status === 'sending' && o.error?.code === 'network')).toBe(true);

    // Backoff: each one's second try comes after 0.5-1 s, its third 1-2 s after that; no request in between.
    await wait(499);
    expect(server.calls).toHaveLength(3);
    await wait(501);
    expect(server.calls).toHaveLength(6);
    await wait(499);
    expect(server.calls).toHaveLength(6);

    // The network comes back (the client's waker fires): every waiting message goes now, oldest first.
    online = true;
    waker.wake();
    await flush();
    expect(sent.map((o) => o.status)).toEqual(['sent', 'sent', 'sent']);
    expect(server.storedTexts()).toEqual(['a', 'b', 'c']);
    for (const o of sent) expect(new Set(server.calls.filter((c) => c.body.text === o.request.body.text).map((c) => c.clientMsgId))).toEqual(new Set([o.clientMsgId]));
  });

  it('after an outage the waiting messages are stored in the order they were typed, even with no signal that it ended', async () => {
    const server = new FakeRoomServer();
    let down = true;
    server.answer = () => (down ? { status: 502, code: 'bad_gateway', message: 'no app server' } : 'store');
    const { queue } = makeQueue(server);
    const typed: OutgoingMessage[] = [];
    for (const t of ['first', 'second', 'third']) {
      typed.push(queue.enqueue(chat(t)));
      await wait(700);
    }
    down = false;
    await wait(16_000);
    expect(typed.map((o) => o.status)).toEqual(['sent', 'sent', 'sent']);
    expect(server.storedTexts()).toEqual(['first', 'second', 'third']);
  });

  it('a message typed while older ones wait to be retried is sent at once, after them', async () => {
    const server = new FakeRoomServer();
    let online = false;
    server.answer = () => (online ? 'store' : 'network');
    const { queue } = makeQueue(server);
    queue.enqueue(chat('older 1'));
    queue.enqueue(chat('older 2'));
    await wait(5000);
    // Back online (no event), and the backoff is long by now: the new message does not wait for it, nor overtake.
    online = true;
    const fresh = queue.enqueue(chat('new'));
    await flush();
    expect(fresh.status).toBe('sent');
    expect(server.storedTexts()).toEqual(['older 1', 'older 2', 'new']);
  });

  it('a lost answer is retried with the same id and the server stores the message once', async () => {
    const server = new FakeRoomServer();
    server.answer = (_r, attempt) => (attempt === 1 ? 'lost' : 'store');
    const { queue } = makeQueue(server);
    const o = queue.enqueue(chat('once'));
    await flush();
    expect(o.status).toBe('sending');
    await wait(1000);
    expect(o.status).toBe('sent');
    expect(server.storedTexts()).toEqual(['once']);
    expect(server.attemptsOf(o.clientMsgId)).toBe(2);
  });

  it.each([
    [429, 'too_many_requests'],
    [503, 'service_unavailable'],
  ])('a %i with Retry-After holds every send for that long, then sends in order', async (status, code) => {
    const server = new FakeRoomServer();
    server.answer = (r, attempt) => (r.body.text === 'first' && attempt === 1 ? { status, code, message: 'busy', retryAfter: '30' } : 'store');
    const { queue } = makeQueue(server);
    const first = queue.enqueue(chat('first'));
    await flush();
    expect(first.status).toBe('sending');
    const second = queue.enqueue(chat('second'));
    await wait(29_999);
    expect(server.calls).toHaveLength(1);
    expect(second.status).toBe('sending');
    await wait(1);
    expect(server.postedTexts()).toEqual(['first', 'first', 'second']);
    expect([first.status, second.status]).toEqual(['sent', 'sent']);
    expect(server.storedTexts()).toEqual(['first', 'second']);
  });

  it('a Retry-After given as an HTTP date is honoured too', async () => {
    const server = new FakeRoomServer();
    server.answer = (_r, attempt) => (attempt === 1 ? { status: 503, code: 'service_unavailable', message: 'busy', retryAfter: new Date(Date.now() + 20_000).toUTCString() } : 'store');
    const { queue } = makeQueue(server);
    const o = queue.enqueue(chat('x'));
    await wait(18_000);
    expect(o.status).toBe('sending');
    await wait(3000);
    expect(o.status).toBe('sent');
  });

  it(`a Retry-After longer than ${MAX_RETRY_AFTER_MS / 1000} s is cut to that`, async () => {
    const server = new FakeRoomServer();
    server.answer = (_r, attempt) => (attempt === 1 ? { status: 503, code: 'service_unavailable', message: 'busy', retryAfter: '86400' } : 'store');
    const { queue } = makeQueue(server);
    const o = queue.enqueue(chat('x'));
    await wait(MAX_RETRY_AFTER_MS - 1);
    expect(o.status).toBe('sending');
    await wait(1);
    expect(o.status).toBe('sent');
  });

  it('401 (the session ended) is not a refusal of the message: it stays unsent', async () => {
    const server = new FakeRoomServer();
    server.answer = () => ({ status: 401, code: 'unauthenticated', message: 'log in again' });
    const { queue } = makeQueue(server);
    const o = queue.enqueue(chat('x'));
    await flush();
    expect(o.status).toBe('sending');
    expect(o.error).toMatchObject({ code: 'unauthenticated' });
  });

  it('a copy of the message arriving from the broker marks it sent while its POST waits to be retried', async () => {
    const server = new FakeRoomServer();
    server.answer = () => 'lost';
    const { queue } = makeQueue(server);
    const o = queue.enqueue(chat('x'));
    await flush();
    expect(o.status).toBe('sending');
    queue.settle(server.stored[0]!);
    expect(o.status).toBe('sent');
    expect(o.message?.seq).toBe(1);
    expect(queue.pending).toEqual([]);
    await wait(60_000);
    expect(server.calls).toHaveLength(1);
  });
});

describe('unsent messages across a reload', () => {
  it('are restored from storage on start, and sent again with their original ids; failed ones stay failed', async () => {
    const storage = new FakeStorage();
    const server = new FakeRoomServer();
    let online = false;
    server.answer = (r) => (r.body.text === 'too big' ? refuse : online ? 'store' : 'network');

    const before = makeQueue(server, { storage: () => storage });
    before.queue.start();
    const pending = before.queue.enqueue(chat('typed offline'));
    const refused = before.queue.enqueue(chat('too big'));
    const pending2 = before.queue.enqueue(chat('typed offline 2'));
    await flush();
    expect(refused.status).toBe('failed');
    // The page goes away (reload); nothing more happens in it.
    before.queue.stop();

    online = true;
    const after = makeQueue(server, { storage: () => storage });
    after.queue.start();
    expect(after.queue.pending.map((o) => [o.clientMsgId, o.status])).toEqual([
      [pending.clientMsgId, 'sending'],
      [refused.clientMsgId, 'failed'],
      [pending2.clientMsgId, 'sending'],
    ]);
    expect(after.queue.pending[1]?.error).toMatchObject({ code: 'body_too_large', message: refuse.message });
    expect(after.changes.map((c) => c.status)).toEqual(['sending', 'failed', 'sending']);
    await flush();
    expect(server.storedTexts()).toEqual(['typed offline', 'typed offline 2']);
    expect(server.stored.map((m) => m.clientMsgId)).toEqual([pending.clientMsgId, pending2.clientMsgId]);
    expect(server.attemptsOf(refused.clientMsgId)).toBe(1);

    // Only the failed one is left in storage, until it is discarded.
    expect(storage.length).toBe(1);
    expect(after.queue.discard(refused.clientMsgId)).toBe(true);
    expect(storage.length).toBe(0);
  });

  it('a message the server stored before the reload, whose answer was lost, is stored once', async () => {
    const storage = new FakeStorage();
    const server = new FakeRoomServer();
    const before = makeQueue(server, { storage: () => storage });
    before.queue.start();
    server.answer = () => 'network';
    const o = before.queue.enqueue(chat('maybe stored'));
    await flush();
    before.queue.stop();
    // It had reached the server after all (the answer was what got lost).
    server.answer = () => 'store';
    await server.post(o.request);

    const after = makeQueue(server, { storage: () => storage });
    after.queue.start();
    await flush();
    expect(after.queue.pending).toEqual([]);
    expect(server.storedTexts()).toEqual(['maybe stored']);
    expect(storage.length).toBe(0);
  });

  it('are kept per user and room: another user of the browser, or another room, restores none of them', async () => {
    const storage = new FakeStorage();
    const server = new FakeRoomServer();
    server.answer = () => 'network';
    const ann = makeQueue(server, { storage: () => storage, userId: 'ann' });
    ann.queue.start();
    ann.queue.enqueue(chat('ann private'));
    await flush();
    ann.queue.stop();

    const ben = makeQueue(server, { storage: () => storage, userId: 'ben' });
    ben.queue.start();
    expect(ben.queue.pending).toEqual([]);
    // A user id built to look like a prefix of ann's keys does not match them either.
    const tricky = makeQueue(server, { storage: () => storage, userId: 'ann/x' });
    tricky.queue.start();
    expect(tricky.queue.pending).toEqual([]);
    const annElsewhere = makeQueue(server, { storage: () => storage, userId: 'ann', roomId: 'another-room' });
    annElsewhere.queue.start();
    expect(annElsewhere.queue.pending).toEqual([]);

    const annAgain = makeQueue(server, { storage: () => storage, userId: 'ann' });
    annAgain.queue.start();
    expect(annAgain.queue.pending.map((o) => o.request.body.text)).toEqual(['ann private']);
  });

  it('two tabs of one person each keep their own messages (neither overwrites the other)', async () => {
    const storage = new FakeStorage();
    const server = new FakeRoomServer();
    server.answer = () => 'network';
    const tab1 = makeQueue(server, { storage: () => storage });
    const tab2 = makeQueue(server, { storage: () => storage });
    tab1.queue.start();
    tab2.queue.start();
    tab1.queue.enqueue(chat('from tab 1'));
    tab2.queue.enqueue(chat('from tab 2'));
    await flush();
    tab1.queue.stop();
    tab2.queue.stop();
    const reloaded = makeQueue(server, { storage: () => storage });
    reloaded.queue.start();
    expect(reloaded.queue.pending.map((o) => o.request.body.text)).toEqual(['from tab 1', 'from tab 2']);
  });

  it('drops stored entries that are not valid records instead of sending them', async () => {
    const storage = new FakeStorage();
    const server = new FakeRoomServer();
    const prefix = `roomcast.unsent/${USER_ID}/${ROOM_ID}/`;
    storage.setItem(`${prefix}not-json`, '{');
    storage.setItem(`${prefix}%E0%A4%A`, '{}');
    storage.setItem(`${prefix}wrong-id`, JSON.stringify({ clientMsgId: 'other', request: {}, status: 'sending', error: null, queuedAt: 1 }));
    storage.setItem(`${prefix}no-body`, JSON.stringify({ clientMsgId: 'no-body', request: { clientMsgId: 'no-body', audience: 'everyone', kind: 'chat' }, status: 'sending', error: null, queuedAt: 1 }));
    storage.setItem('unrelated', 'kept');
    const { queue, errors } = makeQueue(server, { storage: () => storage });
    queue.start();
    await flush();
    expect(queue.pending).toEqual([]);
    expect(server.calls).toEqual([]);
    expect([...storage.items.keys()]).toEqual(['unrelated']);
    expect(errors).toEqual([]);
  });

  it('storage the browser disables degrades to memory only, with one non-fatal error', async () => {
    const server = new FakeRoomServer();
    const { queue, errors } = makeQueue(server, {
      storage: () => {
        throw new DOMException('The operation is insecure.', 'SecurityError');
      },
    });
    queue.start();
    const o = queue.enqueue(chat('still sent'));
    await flush();
    expect(o.status).toBe('sent');
    expect(errors.map((e) => e.code)).toEqual(['storage_unavailable']);
  });

  it('a full storage quota degrades to memory only, with one non-fatal error, and sending goes on', async () => {
    const storage = new FakeStorage();
    storage.failWrites = true;
    const server = new FakeRoomServer();
    server.answer = (r) => (r.body.text === 'too big' ? refuse : 'store');
    const { queue, errors } = makeQueue(server, { storage: () => storage });
    queue.start();
    const sent = [queue.enqueue(chat('one')), queue.enqueue(chat('too big')), queue.enqueue(chat('two'))];
    await flush();
    expect(sent.map((o) => o.status)).toEqual(['sent', 'failed', 'sent']);
    expect(errors.map((e) => e.code)).toEqual(['storage_unavailable']);
    expect(errors[0]?.message).toMatch(/will not survive a reload/);
  });
});
