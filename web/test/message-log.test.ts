/**
 * The message log: seq order whatever order copies arrive in (live, resync, a late publish), each
 * message id once, and the placement the pages use to insert a message where it belongs.
 */
import { describe, expect, it } from 'vitest';
import type { RoomMessage } from '../../shared/protocol/messages';
import { MessageLog } from '../src/client/message-log';

const msg = (seq: number, id = `m${seq}`): RoomMessage => ({
  id,
  roomId: 'r',
  seq,
  senderId: 's',
  audience: 'everyone',
  recipientId: null,
  kind: 'chat',
  body: { text: `#${seq}` },
  clientMsgId: `c-${id}`,
  createdAt: '2026-01-01T00:00:00.000Z',
  broadcastSeq: seq,
});

const seqs = (log: MessageLog): number[] => log.messages.map((m) => m.seq);

describe('MessageLog order', () => {
  it('appends live messages that arrive in order, each placed last', () => {
    const log = new MessageLog();
    expect([1, 2, 3].map((s) => log.insert(msg(s)))).toEqual([{ before: null }, { before: null }, { before: null }]);
    expect(seqs(log)).toEqual([1, 2, 3]);
  });

  it('puts a message that arrives late at its seq, in front of the next one it holds', () => {
    const log = new MessageLog();
    log.insert(msg(2));
    log.insert(msg(5));
    log.insert(msg(9));
    expect(log.insert(msg(7))).toEqual({ before: msg(9) });
    expect(log.insert(msg(1))).toEqual({ before: msg(2) });
    expect(log.insert(msg(3))).toEqual({ before: msg(5) });
    expect(log.insert(msg(10))).toEqual({ before: null });
    expect(seqs(log)).toEqual([1, 2, 3, 5, 7, 9, 10]);
  });

  it('never waits for a seq it will not see: messages past a gap show at once', () => {
    const log = new MessageLog();
    log.insert(msg(1));
    log.insert(msg(4)); // 2 and 3 were for the instructors only
    expect(seqs(log)).toEqual([1, 4]);
  });

  it('keeps any arrival order sorted, and each placement names the message that follows it', () => {
    // A deterministic shuffle of 1..300 (a linear congruential generator), with every tenth seq delivered twice.
    let state = 12345;
    const next = (): number => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const order = Array.from({ length: 300 }, (_, i) => i + 1);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    const arrivals = order.flatMap((s) => (s % 10 === 0 ? [s, s] : [s]));
    const log = new MessageLog();
    for (const s of arrivals) {
      const placement = log.insert(msg(s));
      if (placement === null) continue;
      const at = log.messages.findIndex((m) => m.seq === s);
      expect(placement.before).toBe(log.messages[at + 1] ?? null);
    }
    expect(seqs(log)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
  });
});

describe('MessageLog duplicates', () => {
  it('refuses a second copy of a message id and leaves the log as it was', () => {
    const log = new MessageLog();
    log.insert(msg(1));
    const first = msg(2);
    log.insert(first);
    log.insert(msg(3));
    expect(log.insert(msg(2))).toBeNull();
    expect(log.messages).toHaveLength(3);
    expect(log.messages[1]).toBe(first);
  });

  it('knows a message by its id, not its seq: a copy with the same id is a duplicate wherever it would go', () => {
    const log = new MessageLog();
    log.insert(msg(5, 'x'));
    expect(log.insert(msg(1, 'x'))).toBeNull();
    expect(log.has('x')).toBe(true);
    expect(log.has('m1')).toBe(false);
    expect(seqs(log)).toEqual([5]);
  });
});
