/**
 * roomcast's client library: the REST API and a live, ordered, de-duplicated view of a room
 * over STOMP. Runs in browsers and in Node (pass a `webSocketFactory` built on `ws`).
 *
 * ```ts
 * const api = new RoomcastApi({ baseUrl });
 * await api.login(username, password);
 * const room = new RoomClient({ api, roomId, stompUrls: ['wss://host/ws'] });
 * room.on('message', (m, { before }) => show(m, before));
 * room.on('state', (s) => showState(s));
 * room.start();
 * room.send({ audience: 'everyone', kind: 'chat', body: { text: 'hi' } });
 *
 * // Room events (joins, leaves, messages) as a resumable Server-Sent Events stream:
 * const events = new EventStreamClient({ api, roomId });
 * events.on('event', (e) => record(e));
 * events.start();
 * ```
 */
export { RoomcastApi, type ApiOptions, type LoginResult, type Member, type MyRoom, type Room, type RoomDetails, type SendResult, type User } from './api';
export { backoffDelay, type BackoffOptions } from './backoff';
export type { WebSocketFactory } from './broker-link';
export {
  EventStreamClient,
  type EventSourceConstructor,
  type EventSourceLike,
  type EventStreamClientEvents,
  type EventStreamClientOptions,
  type EventStreamState,
} from './event-stream-client';
export { ApiError, BrokerError, NetworkError, RoomClientError, isFatal, isRefusal, isRetriable, type ClientErrorCode, type LocalErrorCode } from './errors';
export type { Placement } from './message-log';
export { RoomClient, type ConnectionState, type RoomClientEvents, type RoomClientOptions } from './room-client';
export { MAX_RETRY_AFTER_MS, newClientMsgId, type OutgoingMessage, type OutgoingRequest, type OutgoingStatus } from './send-queue';
export { clearUnsent, type PersistUnsent, type StorageLike } from './unsent-store';
