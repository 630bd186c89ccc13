/**
 * The room client's options: defaults filled in once, and anything unknown or nonsensical
 * refused at construction, so a typo never silently becomes a default.
 */
import { PRESENCE_HEARTBEAT_MS } from '../../../shared/protocol/presence';
import type { RoomcastApi } from './api';
import type { BackoffOptions } from './backoff';
import type { WebSocketFactory } from './broker-link';
import { RoomClientError } from './errors';
import type { PersistUnsent } from './unsent-store';

export interface RoomClientOptions {
  api: RoomcastApi;
  roomId: string;
  /** Web-STOMP URLs, tried in turn: one after another failure or drop. Through the proxy, just `wss://<host>/ws`. */
  stompUrls: readonly string[];
  /** Defaults to the global WebSocket (browsers); in Node pass one built on the `ws` package. */
  webSocketFactory?: WebSocketFactory;
  /** STOMP heart-beat in both directions (default 10 s). */
  heartbeatMs?: number;
  /** Resync after this long without any message (default 30 s). */
  silenceResyncMs?: number;
  /** Presence heartbeat interval (default PRESENCE_HEARTBEAT_MS, 10 s). */
  presenceIntervalMs?: number;
  /** Reconnect and send-retry backoff (default 500 ms doubling up to 15 s, with jitter). */
  reconnect?: Partial<BackoffOptions>;
  /** Give up on a connection attempt that has not reached CONNECTED by then (default 10 s). */
  connectTimeoutMs?: number;
  /** Messages per resync request (1-500, default 200). */
  resyncPageSize?: number;
  /** Unacknowledged messages the broker may push from an instructor queue at once (default 100). */
  prefetch?: number;
  /**
   * Keep unsent messages (being sent, or refused) in this storage for this user, restored by
   * `start` after a reload (pages: `{ storage: () => localStorage, userId }`). Default: memory only.
   */
  persistUnsent?: PersistUnsent | null;
}

const OPTION_NAMES = new Set<string>([
  'api',
  'roomId',
  'stompUrls',
  'webSocketFactory',
  'heartbeatMs',
  'silenceResyncMs',
  'presenceIntervalMs',
  'reconnect',
  'connectTimeoutMs',
  'resyncPageSize',
  'prefetch',
  'persistUnsent',
]);

export type Settings = Required<Omit<RoomClientOptions, 'reconnect' | 'persistUnsent'>> & {
  reconnect: BackoffOptions;
  persistUnsent: PersistUnsent | null;
};

/** Fills in defaults and refuses unknown or nonsensical options, so a typo never silently becomes a default. */
export function settingsOf(options: RoomClientOptions): Settings {
  const invalid = (problem: string): RoomClientError => new RoomClientError('invalid_options', `RoomClient: ${problem}`);
  const unknown = Object.keys(options).filter((k) => !OPTION_NAMES.has(k));
  if (unknown.length > 0) throw invalid(`unknown option ${unknown.join(', ')}`);
  if (options.stompUrls.length === 0) throw invalid('stompUrls is empty');
  const webSocketFactory =
    options.webSocketFactory ??
    (typeof WebSocket === 'function' ? (url: string, protocols: string[]) => new WebSocket(url, protocols) : null);
  if (!webSocketFactory) throw invalid('this runtime has no WebSocket; pass webSocketFactory (e.g. built on the ws package)');
  const s: Settings = {
    api: options.api,
    roomId: options.roomId,
    stompUrls: options.stompUrls,
    webSocketFactory,
    heartbeatMs: options.heartbeatMs ?? 10_000,
    silenceResyncMs: options.silenceResyncMs ?? 30_000,
    presenceIntervalMs: options.presenceIntervalMs ?? PRESENCE_HEARTBEAT_MS,
    reconnect: { initialMs: options.reconnect?.initialMs ?? 500, maxMs: options.reconnect?.maxMs ?? 15_000 },
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    resyncPageSize: options.resyncPageSize ?? 200,
    prefetch: options.prefetch ?? 100,
    persistUnsent: options.persistUnsent ?? null,
  };
  const numbers = { ...s, ...s.reconnect } as Record<string, unknown>;
  for (const name of ['heartbeatMs', 'silenceResyncMs', 'presenceIntervalMs', 'initialMs', 'maxMs', 'connectTimeoutMs', 'prefetch']) {
    const v = numbers[name];
    if (!Number.isInteger(v) || (v as number) <= 0) throw invalid(`${name} must be a positive integer`);
  }
  if (!Number.isInteger(s.resyncPageSize) || s.resyncPageSize < 1 || s.resyncPageSize > 500) throw invalid('resyncPageSize must be 1-500');
  const p = s.persistUnsent;
  if (p && (typeof p.storage !== 'function' || typeof p.userId !== 'string' || p.userId === '')) {
    throw invalid('persistUnsent needs storage (a function returning the storage) and a non-empty userId');
  }
  return s;
}

