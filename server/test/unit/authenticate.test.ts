import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authOf, authenticate } from '../../src/http/authenticate';
import { errorHandler } from '../../src/http/error-handler';
import { createLogger } from '../../src/logger';
import type { Session, SessionStore } from '../../src/sessions/session-store';

const TOKEN = 't'.repeat(43);

/** A session store that counts its reads; only TOKEN is a live session. */
function countingSessions(): { store: SessionStore; reads: () => number } {
  let reads = 0;
  const session = { userId: 'u1', username: 'ann', role: 'instructor' } as unknown as Session;
  const store = {
    get: async (token: string) => {
      reads++;
      return token === TOKEN ? session : null;
    },
  } as unknown as SessionStore;
  return { store, reads: () => reads };
}

describe('authenticate', () => {
  const sessions = countingSessions();
  let server: http.Server;
  let base = '';

  beforeAll(async () => {
    // The app's shape: one router guards `/rooms`, another `/rooms/:roomId/messages` beneath it.
    const app = express();
    const rooms = express.Router();
    rooms.use('/rooms', authenticate(sessions.store));
    rooms.get('/rooms', (_req, res) => res.json({ user: authOf(res).session.userId }));
    const messages = express.Router();
    messages.use('/rooms/:roomId/messages', authenticate(sessions.store));
    messages.post('/rooms/:roomId/messages', (_req, res) => res.status(201).json({ user: authOf(res).session.userId }));
    app.use('/api', rooms);
    app.use('/api', messages);
    app.use(errorHandler(createLogger({ logLevel: 'silent' }, 'test')));
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const post = (token: string): Promise<Response> =>
    fetch(`${base}/rooms/r1/messages`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });

  it('reads the session once for a request that passes two guards', async () => {
    const before = sessions.reads();
    const res = await post(TOKEN);
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ user: 'u1' });
    expect(sessions.reads() - before).toBe(1);
  });

  it('still refuses an unknown token at the first guard, and a request without one', async () => {
    const before = sessions.reads();
    const res = await post('x'.repeat(43));
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');
    expect(sessions.reads() - before).toBe(1);
    const bare = await fetch(`${base}/rooms/r1/messages`, { method: 'POST' });
    expect(bare.status).toBe(401);
  });

  it('does not carry one request\'s session into the next', async () => {
    await post(TOKEN);
    expect((await post('y'.repeat(43))).status).toBe(401);
  });
});
