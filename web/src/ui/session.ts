/**
 * The login session of this tab. The token lives in sessionStorage: it survives a reload but
 * not the tab, and other tabs do not share it.
 */
import { RoomcastApi, type User } from '../client/index';

const KEY = 'roomcast.session';

export interface StoredSession {
  token: string;
  user: User;
}

export function loadSession(): StoredSession | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as StoredSession | null;
    return s && typeof s.token === 'string' && s.user ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(session: StoredSession): void {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}

/** An API client for this page's origin, logged in when a session is stored. */
export function pageApi(session: StoredSession | null): RoomcastApi {
  return new RoomcastApi({ token: session?.token ?? null });
}
