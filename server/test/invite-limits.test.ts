/**
 * An invite code is the only secret between a stranger with an account and a room: guessing
 * codes is limited like guessing passwords, and a limited guesser learns nothing, not even from
 * a right code.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INVITE_LIMITS } from '../src/auth/attempt-limiter';
import type { ApiResponse } from '../../testkit/api-client';
import { freshAddress, makeRoom, makeUser, startHarness, type Harness, type TestUser } from '../../testkit/harness';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const join = (user: TestUser, inviteCode: string, from: string): Promise<ApiResponse> =>
  user.api.request('POST', '/api/rooms/join', JSON.stringify({ inviteCode }), { 'x-forwarded-for': from });

const wrongCode = (): string => randomBytes(6).toString('hex').toUpperCase();

describe('invite code guessing', () => {
  const { perAccountAddress } = INVITE_LIMITS;

  it('answers unknown codes with 404 up to the limit, then 429 with Retry-After, even for the right code', async () => {
    const room = await makeRoom(h, 0);
    const guesser = await makeUser(h, 'learner');
    const from = freshAddress();
    for (let i = 0; i < perAccountAddress.maxFailures; i++) {
      const res = await join(guesser, wrongCode(), from);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('invite_not_found');
    }
    for (const code of [wrongCode(), room.inviteCode]) {
      const res = await join(guesser, code, from);
      expect(res.status).toBe(429);
      expect(res.body.error.code).toBe('too_many_attempts');
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(perAccountAddress.windowSeconds);
    }
    // It never got in.
    const mine = await guesser.api.get('/api/rooms');
    expect(mine.body.rooms.map((r: { id: string }) => r.id)).not.toContain(room.id);
  });

  it('does not stop another learner, or a right code after a few typos', async () => {
    const room = await makeRoom(h, 0);
    const [careless, other] = [await makeUser(h, 'learner'), await makeUser(h, 'learner')];
    const from = freshAddress();
    for (let i = 0; i < 3; i++) expect((await join(careless, wrongCode(), from)).status).toBe(404);
    expect((await join(careless, room.inviteCode, from)).status).toBe(200);
    expect((await join(other, room.inviteCode, freshAddress())).status).toBe(200);
  });

  it('is given only to instructors: no answer to a learner carries it', async () => {
    const room = await makeRoom(h, 1);
    const learner = room.learners[0]!;
    for (const path of ['/api/me', '/api/rooms', `/api/rooms/${room.id}`]) {
      const res = await learner.api.get(path);
      expect(res.status).toBe(200);
      expect(JSON.stringify(res.body), path).not.toContain(room.inviteCode);
    }
    const joined = await join(await makeUser(h, 'learner'), room.inviteCode, freshAddress());
    expect(joined.status).toBe(200);
    expect(joined.body.room.inviteCode).toBeUndefined();
    for (const path of ['/api/me', '/api/rooms', `/api/rooms/${room.id}`]) {
      expect(JSON.stringify((await room.instructor.api.get(path)).body), path).toContain(room.inviteCode);
    }
  });

  it('counts one address across accounts', async () => {
    const from = freshAddress();
    let refused: ApiResponse | undefined;
    for (let i = 0; i <= INVITE_LIMITS.perAddress.maxFailures && !refused; i++) {
      // A fresh account every few guesses stays under the per-account limits.
      const res = await join(await makeUser(h, 'learner'), wrongCode(), from);
      if (res.status === 429) refused = res;
      else expect(res.status).toBe(404);
    }
    expect(refused?.body.error.code).toBe('too_many_attempts');
  });
});
