/**
 * Checks what the broker delivers before it reaches the log: a frame that is not a message of
 * this room (a bug, or something else bound to the queue) is reported and dropped instead of
 * corrupting the order. Only the fields the log and the pages rely on are checked; a kind or
 * audience this client does not know yet still shows (pages have a fallback for them).
 */
// Types only: the protocol module's runtime part is the zod schema, which the browser does not need.
import type { RoomMessage } from '../../../shared/protocol/messages';
import type { OnlineMember, RoomPresence } from '../../../shared/protocol/presence';

const isString = (v: unknown): v is string => typeof v === 'string';

/** The room message in a MESSAGE frame's body, or null when it is not one of `roomId`. */
export function parseRoomMessage(body: string, roomId: string): RoomMessage | null {
  let m: Partial<Record<keyof RoomMessage, unknown>> | null;
  try {
    m = JSON.parse(body) as typeof m;
  } catch {
    return null;
  }
  const ok =
    m !== null &&
    typeof m === 'object' &&
    isString(m.id) &&
    m.roomId === roomId &&
    Number.isInteger(m.seq) &&
    (m.seq as number) > 0 &&
    isString(m.senderId) &&
    isString(m.audience) &&
    (m.recipientId === null || isString(m.recipientId)) &&
    isString(m.kind) &&
    m.body !== null &&
    typeof m.body === 'object' &&
    !Array.isArray(m.body) &&
    isString(m.clientMsgId) &&
    isString(m.createdAt);
  if (!ok) return null;
  const message = m as RoomMessage;
  // Numbered exactly when it is to everyone: anything else would corrupt the client's count of them.
  const numbered = Number.isInteger(message.broadcastSeq) && (message.broadcastSeq as number) > 0;
  return numbered === (message.audience === 'everyone') ? message : null;
}

/**
 * A pushed presence snapshot (`{"presence": {roomId, at, online, members?}}`, published by the
 * server when who is online changes), or null when the frame is not one of `roomId`.
 */
export function parsePresence(body: string, roomId: string): (RoomPresence & { at: number }) | null {
  let frame: { presence?: Partial<RoomPresence & { roomId: unknown; at: unknown }> } | null;
  try {
    frame = JSON.parse(body) as typeof frame;
  } catch {
    return null;
  }
  const p = frame?.presence;
  if (!p || typeof p !== 'object' || p.roomId !== roomId || !Number.isInteger(p.online) || typeof p.at !== 'number') return null;
  const members = Array.isArray(p.members) ? (p.members as OnlineMember[]).filter((m) => isString(m?.userId) && isString(m?.displayName)) : undefined;
  return { online: p.online as number, at: p.at, ...(members ? { members } : {}) };
}
