/**
 * What the broker delivers is checked before it reaches the log: a frame that is not a message of
 * this room is dropped (null), one of a kind or audience this client does not know yet still shows.
 */
import { describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../shared/protocol/messages';
import { parseRoomMessage } from '../src/client/incoming';

const ROOM = 'room-1';

const toEveryone: RoomMessage = {
  id: 'm-7',
  roomId: ROOM,
  seq: 7,
  senderId: 'u-1',
  audience: 'everyone',
  recipientId: null,
  kind: 'chat',
  body: { text: 'hi' },
  clientMsgId: 'c-7',
  createdAt: '2026-01-01T00:00:00.000Z',
  broadcastSeq: 4,
};

const frame = (changes: Record<string, unknown>, base: RoomMessage = toEveryone): string => JSON.stringify({ ...base, ...changes });

describe('parseRoomMessage accepts', () => {
  it('a message to everyone with its broadcastSeq', () => {
    expect(parseRoomMessage(JSON.stringify(toEveryone), ROOM)).toEqual(toEveryone);
  });

  it('a message to the instructors or to one member, without a broadcastSeq (null or absent)', () => {
    expect(parseRoomMessage(frame({ audience: 'instructors', kind: 'question', broadcastSeq: null }), ROOM)).toMatchObject({ audience: 'instructors' });
    expect(parseRoomMessage(frame({ audience: 'member', recipientId: 'u-2', broadcastSeq: undefined }), ROOM)).toMatchObject({ recipientId: 'u-2' });
  });

  it('a kind or an audience this client does not know yet', () => {
    expect(parseRoomMessage(frame({ kind: 'poll' }), ROOM)).toMatchObject({ kind: 'poll' });
    expect(parseRoomMessage(frame({ audience: 'breakout', broadcastSeq: null }), ROOM)).toMatchObject({ audience: 'breakout' });
  });
});

describe('parseRoomMessage drops', () => {
  it.each([
    ['not JSON', 'MESSAGE frame body'],
    ['an empty body', ''],
    ['JSON null', 'null'],
    ['a JSON array', '[]'],
    ['a JSON string', '"hello"'],
    ['a JSON number', '7'],
  ])('%s', (_what, body) => {
    expect(parseRoomMessage(body, ROOM)).toBeNull();
  });

  it('a message of another room', () => {
    expect(parseRoomMessage(frame({ roomId: 'room-2' }), ROOM)).toBeNull();
  });

  it.each([0, -1, 1.5, '7', null])('seq %s', (seq) => {
    expect(parseRoomMessage(frame({ seq }), ROOM)).toBeNull();
  });

  it.each(['id', 'senderId', 'audience', 'kind', 'clientMsgId', 'createdAt'])('%s missing or not a string', (field) => {
    expect(parseRoomMessage(frame({ [field]: undefined }), ROOM)).toBeNull();
    expect(parseRoomMessage(frame({ [field]: 42 }), ROOM)).toBeNull();
  });

  it.each([
    ['missing', undefined],
    ['a number', 3],
  ])('recipientId %s', (_what, recipientId) => {
    expect(parseRoomMessage(frame({ recipientId }), ROOM)).toBeNull();
  });

  it.each([
    ['missing', undefined],
    ['null', null],
    ['an array', ['hi']],
    ['a string', 'hi'],
  ])('body %s', (_what, body) => {
    expect(parseRoomMessage(frame({ body }), ROOM)).toBeNull();
  });

  it.each([null, undefined, 0, -2, 2.5, '4'])('a message to everyone with broadcastSeq %s', (broadcastSeq) => {
    expect(parseRoomMessage(frame({ broadcastSeq }), ROOM)).toBeNull();
  });

  it('a message not to everyone that carries a broadcastSeq', () => {
    expect(parseRoomMessage(frame({ audience: 'instructors', broadcastSeq: 4 }), ROOM)).toBeNull();
  });
});
