/**
 * Keeps a person's unsent messages (still being sent, or refused and waiting for discard or
 * edit) in the browser's storage, so a reload, a crash or a closed tab loses none of them.
 *
 * One storage entry per message, keyed by user, room and client message id: two users of one
 * browser never see each other's, and two tabs of one person each write and remove only their
 * own messages (a single list per room would have each tab overwrite the other's). Whatever
 * storage holds is treated as untrusted input: an entry of the wrong shape is dropped.
 *
 * Storage can fail (disabled by the browser, private mode, quota full). Then the messages live
 * in memory only, and the failure is reported once, never thrown: sending matters more.
 */
import type { SendMessageRequest } from '../../../shared/protocol/messages';
import { RoomClientError, type ClientErrorCode } from './errors';

/** The part of the Web Storage API used here (`window.localStorage` has it). */
export interface StorageLike {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Where to keep unsent messages: `storage` is a function because merely reading `window.localStorage` throws where it is disabled. */
export interface PersistUnsent {
  storage: () => StorageLike;
  /** The logged-in user: part of every key, so another user of this browser never restores these. */
  userId: string;
}

export interface UnsentRecord {
  clientMsgId: string;
  request: SendMessageRequest;
  status: 'sending' | 'failed';
  /** The server's code and message when `failed`. */
  error: { code: ClientErrorCode; message: string } | null;
  /** When it was first queued (ms since the epoch, kept strictly increasing within a tab): the order of sending. */
  queuedAt: number;
}

const PREFIX = 'roomcast.unsent/';

/** Keys of one user's entries start with this (encoded: a `/` in an id cannot fake another user's prefix). */
const userPrefix = (userId: string): string => `${PREFIX}${encodeURIComponent(userId)}/`;
const roomPrefix = (userId: string, roomId: string): string => `${userPrefix(userId)}${encodeURIComponent(roomId)}/`;

/** The server accepts client message ids of this shape (shared/protocol/messages.ts). */
const CLIENT_MSG_ID = /^[\w.:-]{1,100}$/;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The record in one entry, or null when it is not one this client wrote for `clientMsgId`. */
function parseRecord(text: string | null, clientMsgId: string): UnsentRecord | null {
  let r: unknown;
  try {
    r = JSON.parse(text ?? 'null');
  } catch {
    return null;
  }
  if (!isObject(r) || r.clientMsgId !== clientMsgId || !CLIENT_MSG_ID.test(clientMsgId)) return null;
  const q = r.request;
  // Audience and kind values are the server's to judge: one it refuses shows as failed, like any refusal.
  const requestOk =
    isObject(q) &&
    q.clientMsgId === clientMsgId &&
    typeof q.audience === 'string' &&
    typeof q.kind === 'string' &&
    isObject(q.body) &&
    (q.recipientId === undefined || typeof q.recipientId === 'string');
  const e = r.error;
  const errorOk = e === null || (isObject(e) && typeof e.code === 'string' && typeof e.message === 'string');
  const ok = requestOk && (r.status === 'sending' || r.status === 'failed') && errorOk && Number.isFinite(r.queuedAt);
  return ok ? (r as unknown as UnsentRecord) : null;
}

/** The client message id in the last part of a key; '' (matching no record) when it is not valid URI encoding. */
function decodedId(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return '';
  }
}

/** Every key of `storage` that starts with `prefix` (collected first: removing while iterating shifts the indexes). */
function keysWithPrefix(storage: StorageLike, prefix: string): string[] {
  const keys: string[] = [];
  for (let i = 0; i < storage.length; i++) {
    const key = storage.key(i);
    if (key?.startsWith(prefix)) keys.push(key);
  }
  return keys;
}

export class UnsentStore {
  private storage: StorageLike | null = null;
  /** False once a read or write failed: memory only from then on (removals are still tried, see `remove`). */
  private usable = false;
  private readonly prefix: string;

  constructor(
    persist: PersistUnsent,
    roomId: string,
    private readonly onError: (err: RoomClientError) => void,
  ) {
    this.prefix = roomPrefix(persist.userId, roomId);
    try {
      this.storage = persist.storage();
      this.usable = true;
    } catch (err) {
      this.degrade(err);
    }
  }

  /** This user's unsent messages of this room, oldest first; entries that are not valid records are removed. */
  load(): UnsentRecord[] {
    if (!this.usable || !this.storage) return [];
    const records: UnsentRecord[] = [];
    try {
      for (const key of keysWithPrefix(this.storage, this.prefix)) {
        const record = parseRecord(this.storage.getItem(key), decodedId(key.slice(this.prefix.length)));
        if (record) records.push(record);
        else this.storage.removeItem(key);
      }
    } catch (err) {
      this.degrade(err);
    }
    return records.sort((a, b) => a.queuedAt - b.queuedAt);
  }

  save(record: UnsentRecord): void {
    if (!this.usable || !this.storage) return;
    try {
      this.storage.setItem(this.keyOf(record.clientMsgId), JSON.stringify(record));
    } catch (err) {
      this.degrade(err);
    }
  }

  remove(clientMsgId: string): void {
    // Tried even after a failed write (a full quota still allows removing): a stale entry would come back after a reload.
    try {
      this.storage?.removeItem(this.keyOf(clientMsgId));
    } catch {
      // Then it does come back: a stale `sending` one is resent with its own id (the server replays it), a `failed` one shows again.
    }
  }

  private keyOf(clientMsgId: string): string {
    return `${this.prefix}${encodeURIComponent(clientMsgId)}`;
  }

  /** Storage is unusable: keep going in memory and say so (once: nothing reads or writes storage after this). */
  private degrade(err: unknown): void {
    const why = this.storage ? 'the browser refused to store them' : 'this browser does not allow storage here';
    this.usable = false;
    const detail = err instanceof Error ? err.message : String(err);
    this.onError(new RoomClientError('storage_unavailable', `unsent messages will not survive a reload: ${why} (${detail})`, { cause: err }));
  }
}

/** Forgets every unsent message of `userId` in this browser, in every room (explicit log-out on a shared computer). */
export function clearUnsent(storage: StorageLike, userId: string): void {
  for (const key of keysWithPrefix(storage, userPrefix(userId))) storage.removeItem(key);
}
