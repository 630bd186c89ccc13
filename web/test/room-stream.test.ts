import { describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../shared/protocol/messages';
import { RoomStream } from '../src/client/room-stream';

/** A message of seq `seq`; `broadcastSeq` set means it is to everyone. */
const msg = (seq: number, broadcastSeq: number | null = null): RoomMessage => ({
  id: `m${seq}`,
  roomId: 'r',
  seq,
  senderId: 's',
  audience: broadcastSeq === null ? 'instructors' : 'everyone',
  recipientId: null,
  kind: 'chat',
  body: {},
  clientMsgId: `c${seq}`,
  createdAt: '2026-01-01T00:00:00.000Z',
  broadcastSeq,
});

describe('RoomStream (learner: messages to everyone, by broadcastSeq)', () => {
  it('moves with each message that continues the run, across seqs the learner may not see', () => {
    const s = RoomStream.of('learner');
    s.add(msg(1, 1));
    s.add(msg(3, 2)); // seq 2 was an instructor-only question: not a hole
    s.add(msg(4, 3));
    expect(s.completeThrough).toBe(4);
    expect(s.hasHole).toBe(false);
  });

  it('never passes a message published late, and moves past it once it arrives', () => {
    const s = RoomStream.of('learner');
    s.completeUpTo(10, 6); // a resync: room at seq 10, 6 messages to everyone so far
    s.add(msg(12, 8)); // broadcast 7 (seq 11) is committed but not published yet
    s.add(msg(13, 9));
    expect(s.completeThrough).toBe(10);
    expect(s.hasHole).toBe(true);
    s.add(msg(11, 7));
    expect(s.completeThrough).toBe(13);
    expect(s.hasHole).toBe(false);
  });

  it('ignores messages that are not to everyone and numbers it already holds', () => {
    const s = RoomStream.of('learner');
    s.add(msg(5));
    expect(s.completeThrough).toBe(0);
    s.add(msg(1, 1));
    s.add(msg(1, 1));
    expect(s.completeThrough).toBe(1);
  });

  it('takes a resync as complete up to its snapshot, and closes holes below it', () => {
    const s = RoomStream.of('learner');
    s.add(msg(1, 1));
    s.add(msg(9, 4)); // 2 and 3 missing
    expect(s.completeThrough).toBe(1);
    s.completeUpTo(9, 4); // the resync returned 2 and 3 and read the room at seq 9
    expect(s.completeThrough).toBe(9);
    expect(s.hasHole).toBe(false);
    s.add(msg(10, 5));
    expect(s.completeThrough).toBe(10);
  });

  it('a resync older than what is held never moves it back', () => {
    const s = RoomStream.of('learner');
    s.completeUpTo(20, 10);
    s.completeUpTo(5, 2);
    expect(s.completeThrough).toBe(20);
  });
});

describe('RoomStream (instructor: every message, by seq)', () => {
  it('counts every seq, so any missing one is a hole', () => {
    const s = RoomStream.of('instructor');
    s.add(msg(1, 1));
    s.add(msg(2));
    s.add(msg(4, 2));
    expect(s.completeThrough).toBe(2);
    expect(s.hasHole).toBe(true);
    s.add(msg(3));
    expect(s.completeThrough).toBe(4);
  });

  it('takes the room seq of a resync as its number', () => {
    const s = RoomStream.of('instructor');
    s.completeUpTo(7, 3);
    s.add(msg(8));
    expect(s.completeThrough).toBe(8);
  });
});
