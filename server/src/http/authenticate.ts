import type { NextFunction, Request, Response } from 'express';
import { AuthError } from '../errors';
import type { Session, SessionStore } from '../sessions/session-store';

export interface Authenticated {
  session: Session;
  token: string;
}

/**
 * Requires `Authorization: Bearer <session token>`; puts the session in `res.locals.auth`.
 * Routers guard overlapping prefixes (`/rooms` and `/rooms/:roomId/messages`), so a request can
 * pass several of these: the first one's answer stands and the session is read from Redis once.
 */
export function authenticate(sessions: SessionStore) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (res.locals.auth !== undefined) {
      next();
      return;
    }
    const header = req.get('authorization') ?? '';
    const match = /^Bearer ([\w-]{20,100})$/.exec(header);
    if (!match?.[1]) throw new AuthError('unauthenticated', 'missing or malformed Authorization: Bearer token');
    const session = await sessions.get(match[1]);
    if (!session) throw new AuthError('unauthenticated', 'session expired or revoked; log in again');
    res.locals.auth = { session, token: match[1] } satisfies Authenticated;
    next();
  };
}

export const authOf = (res: Response): Authenticated => res.locals.auth as Authenticated;
