/**
 * Presence from the client's side: a heartbeat at start and every interval (no reads: changes
 * come pushed), the room's presence read on request (going live), errors reported without
 * stopping the beat, and an explicit leave.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RoomPresence } from '../../shared/protocol/presence';
import { ApiError, NetworkError } from '../src/client/errors';
import { PresenceReporter } from '../src/client/presence';
import { FakeFetch, apiError, deferred, json, type Reply } from './fake-fetch';

const ROOM = 'room-1';
const PATH = `/api/rooms/${ROOM}/presence`;
const INTERVAL = 10_000;

const learnerView: RoomPresence = { online: 3 };
const instructorView: RoomPresence = { online: 2, members: [{ userId: 'u-1', displayName: 'Ada', role: 'instructor' }, { userId: 'u-2', displayName: 'Ben', role: 'learner' }] };

function reporter(routes: { beat?: Reply | ((nth: number) => Reply); read?: Reply } = {}) {
  const { beat = { status: 204 }, read = json(200, learnerView) } = routes;
  const server = new FakeFetch()
    .on('POST', PATH, typeof beat === 'function' ? (_r, nth) => beat(nth) : beat)
    .on('GET', PATH, read)
    .on('DELETE', PATH, { status: 204 });
  const seen: RoomPresence[] = [];
  const errors: unknown[] = [];
  const presence = new PresenceReporter(server.api(), ROOM, INTERVAL, (p) => seen.push(p), (err) => errors.push(err));
  /** The requests so far, as `METHOD` only (every one goes to the presence route). */
  const calls = (): string[] => server.requests.map((r) => r.method);
  return { server, presence, seen, errors, calls };
}

const wait = (ms: number): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('PresenceReporter', () => {
  it('beats at once on start and every interval after, not sooner, and reads nothing by itself', async () => {
    const { presence, seen, calls, server } = reporter();
    presence.start();
    await wait(0);
    expect(calls()).toEqual(['POST']);
    expect(server.requests[0]?.headers).toMatchObject({ authorization: 'Bearer session-token' });
    await wait(INTERVAL - 1);
    expect(calls()).toEqual(['POST']);
    await wait(1);
    await wait(2 * INTERVAL);
    expect(calls()).toEqual(['POST', 'POST', 'POST', 'POST']);
    expect(seen).toEqual([]);
    presence.stop();
  });

  it('reads the room presence when asked (the connection went live) and reports it', async () => {
    const { presence, seen, calls } = reporter({ read: json(200, instructorView) });
    presence.start();
    presence.refresh();
    await wait(0);
    expect(calls().sort()).toEqual(['GET', 'POST']);
    expect(seen).toEqual([instructorView]);
    presence.stop();
  });

  it('reports a failed heartbeat and keeps beating', async () => {
    const { presence, errors, calls } = reporter({ beat: (nth) => (nth === 1 ? 'network' : nth === 2 ? apiError(503, 'service_unavailable', 'redis is down') : { status: 204 }) });
    presence.start();
    await wait(0);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(NetworkError);
    await wait(INTERVAL);
    expect(errors[1]).toMatchObject({ status: 503, code: 'service_unavailable' });
    await wait(INTERVAL);
    expect(calls()).toEqual(['POST', 'POST', 'POST']);
    expect(errors).toHaveLength(2);
    presence.stop();
  });

  it('reports a failed read', async () => {
    const { presence, seen, errors } = reporter({ read: apiError(403, 'not_a_member', 'removed') });
    presence.start();
    presence.refresh();
    await wait(0);
    expect(seen).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ApiError);
    expect(errors[0]).toMatchObject({ code: 'not_a_member' });
    presence.stop();
  });

  it('sends no heartbeat after stop', async () => {
    const { presence, calls } = reporter();
    presence.start();
    await wait(INTERVAL);
    presence.stop();
    await wait(10 * INTERVAL);
    expect(calls().filter((m) => m === 'POST')).toHaveLength(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leave tells the server at once, with keepalive so it outlives the page', async () => {
    const { presence, server } = reporter();
    await presence.leave();
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({ method: 'DELETE', path: PATH, keepalive: true, headers: { authorization: 'Bearer session-token' } });
  });

  it('leave fails with the API error when the server cannot be reached', async () => {
    const server = new FakeFetch().on('DELETE', PATH, 'network');
    const presence = new PresenceReporter(server.api(), ROOM, INTERVAL, () => undefined, () => undefined);
    await expect(presence.leave()).rejects.toBeInstanceOf(NetworkError);
  });

  it('reports nothing from a beat or a read still in flight when it is stopped', async () => {
    for (const when of ['beat', 'read'] as const) {
      const held = deferred<Reply>();
      const server = new FakeFetch()
        .on('POST', PATH, when === 'beat' ? () => held.promise : { status: 204 })
        .on('GET', PATH, when === 'read' ? () => held.promise : json(200, learnerView));
      const seen: RoomPresence[] = [];
      const errors: unknown[] = [];
      const presence = new PresenceReporter(server.api(), ROOM, INTERVAL, (p) => seen.push(p), (err) => errors.push(err));
      presence.start();
      if (when === 'read') presence.refresh();
      await wait(0);
      presence.stop();
      held.resolve(when === 'beat' ? 'network' : json(200, learnerView));
      await wait(0);
      expect([seen, errors], when).toEqual([[], []]);
    }
  });
});
