/**
 * The STOMP gate's pure parts, byte for byte: WebSocket framing, STOMP framing and the session
 * rules. The same rules are shown against the real broker through a real proxy in
 * websocket-gate.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { exchangeDestination, instructorQueueName, newPageQueueName, queueDestination, roomAllKey, roomInstructorKey, roomUserKey } from '../../shared/protocol/routing';
import { GateRefusal, type GateRefusalReason } from '../src/gate-refusal';
import { ClientStreamGate } from '../src/stomp-gate';
import { StompStreamReader, errorFrame } from '../src/stomp-frames';
import { OPCODE, ServerFrameBoundaries, serverFrame } from '../src/websocket-frames';

/** A masked client frame, as a browser sends it. */
function clientFrame(payload: Buffer | string, { opcode = OPCODE.text as number, fin = true, rsv = 0 }: { opcode?: number; fin?: boolean; rsv?: number } = {}): Buffer {
  const data = Buffer.from(payload);
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const len = data.length;
  const ext = len < 126 ? Buffer.alloc(0) : len < 65536 ? Buffer.alloc(2) : Buffer.alloc(8);
  if (len >= 126 && len < 65536) ext.writeUInt16BE(len);
  if (len >= 65536) ext.writeBigUInt64BE(BigInt(len));
  const head = Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, 0x80 | (len < 126 ? len : len < 65536 ? 126 : 127)]);
  const masked = Buffer.from(data.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, ext, mask, masked]);
}

const stomp = (command: string, headers: Record<string, string> = {}, body = ''): string =>
  `${command}\n${Object.entries(headers)
    .map(([k, v]) => `${k}:${v}\n`)
    .join('')}\n${body}\0`;

const user = randomUUID();
const room = randomUUID();
const CONNECT = stomp('CONNECT', { 'accept-version': '1.2', host: '/', login: user, passcode: 'secret' });
const limits = { maxFrameBytes: 64 * 1024, maxSubscriptions: 4 };

function connected(): ClientStreamGate {
  const gate = new ClientStreamGate(limits);
  expect(gate.push(clientFrame(CONNECT))).toHaveLength(1);
  return gate;
}

function refusal(run: () => unknown): GateRefusalReason {
  try {
    run();
  } catch (err) {
    if (err instanceof GateRefusal) return err.reason;
    throw err;
  }
  throw new Error('not refused');
}

const subscribe = (destination: string, extra: Record<string, string> = {}, id: string = randomUUID()): Buffer => clientFrame(stomp('SUBSCRIBE', { id, destination, ...extra }));

describe('the STOMP gate', () => {
  it('forwards the frames a room client sends, byte for byte', () => {
    const gate = connected();
    const frames = [
      subscribe(exchangeDestination(roomAllKey(room)), { receipt: 'r1' }),
      subscribe(exchangeDestination(roomUserKey(room, user)), { ack: 'auto' }),
      clientFrame('\n'), // heart-beat
      clientFrame(stomp('ACK', { id: 'm1' })),
      clientFrame(stomp('UNSUBSCRIBE', { id: 'x' })),
      clientFrame(Buffer.from([0x03, 0xe8]), { opcode: OPCODE.close }),
    ];
    const out = gate.push(Buffer.concat(frames));
    expect(Buffer.concat(out)).toEqual(Buffer.concat(frames));
  });

  it('lets an instructor consume its own queue with client acks and a prefetch', () => {
    const gate = connected();
    const frame = subscribe(queueDestination(instructorQueueName(room, user)), { ack: 'client-individual', 'prefetch-count': '100', receipt: 'r' });
    expect(gate.push(frame)).toEqual([frame]);
  });

  it('holds a frame split over many WebSocket fragments and chunks until its head is complete', () => {
    const gate = connected();
    const text = stomp('SUBSCRIBE', { id: 's', destination: exchangeDestination(roomAllKey(room)) });
    const parts = [text.slice(0, 5), text.slice(5, 30), text.slice(30)].map((p, i, all) =>
      clientFrame(p, { opcode: i === 0 ? OPCODE.text : OPCODE.continuation, fin: i === all.length - 1 }),
    );
    const wire = Buffer.concat([parts[0]!, clientFrame('', { opcode: OPCODE.ping }), parts[1]!, parts[2]!]);
    const out: Buffer[] = [];
    for (let i = 0; i < wire.length; i++) {
      const got = gate.push(wire.subarray(i, i + 1));
      if (i < wire.length - 1) expect(got).toEqual([]);
      out.push(...got);
    }
    expect(Buffer.concat(out)).toEqual(wire);
  });

  it.each([
    ['SEND', stomp('SEND', { destination: exchangeDestination(roomAllKey(room)) }, 'hi'), 'command'],
    ['BEGIN', stomp('BEGIN', { transaction: 't' }), 'command'],
    ['COMMIT', stomp('COMMIT', { transaction: 't' }), 'command'],
    ['ABORT', stomp('ABORT', { transaction: 't' }), 'command'],
    ['an unknown command', stomp('PUBLISH'), 'command'],
    ['a second CONNECT', CONNECT, 'connect_repeated'],
  ] as const)('refuses %s', (_, frame, reason) => {
    expect(refusal(() => connected().push(clientFrame(frame)))).toBe(reason);
  });

  it('refuses anything but CONNECT or STOMP first, and a CONNECT without credentials', () => {
    expect(refusal(() => new ClientStreamGate(limits).push(subscribe(exchangeDestination(roomAllKey(room)))))).toBe('connect_first');
    expect(refusal(() => new ClientStreamGate(limits).push(clientFrame(stomp('CONNECT', { login: user }))))).toBe('header');
    expect(new ClientStreamGate(limits).push(clientFrame(stomp('STOMP', { login: user, passcode: 'p' })))).toHaveLength(1);
  });

  const other = randomUUID();
  it.each([
    ['a topic', '/topic/room.x'],
    ['a queue', '/queue/stomp-subscription-abc'],
    ['a temporary queue', '/temp-queue/t'],
    ['a reply queue', '/reply-queue/r'],
    ['another exchange', `/exchange/amq.fanout/${roomAllKey(room)}`],
    ['a wildcard key', exchangeDestination(`room.${room}.#`)],
    ["the room's instructor key", exchangeDestination(roomInstructorKey(room))],
    ["another user's key", exchangeDestination(roomUserKey(room, other))],
    ["another user's instructor queue", queueDestination(instructorQueueName(room, other))],
    ['a subscription queue by name', queueDestination('stomp-subscription-abc')],
    ['a percent-encoded key', `/exchange/amq.topic/room.${room}%2Eall`],
  ])('refuses a SUBSCRIBE to %s', (_, destination) => {
    expect(refusal(() => connected().push(subscribe(destination)))).toBe('destination');
  });

  it.each(['x-queue-name', 'durable', 'auto-delete', 'exclusive', 'persistent', 'x-expires', 'x-max-length', 'content-length', 'Destination'])(
    'refuses a SUBSCRIBE with the header %s',
    (name) => {
      expect(refusal(() => connected().push(subscribe(exchangeDestination(roomAllKey(room)), { [name]: '1' })))).toBe('header');
    },
  );

  it("lets a page put its two room keys on one queue it names, as the web client does", () => {
    const gate = connected();
    const queue = { 'x-queue-name': newPageQueueName() };
    expect(gate.push(subscribe(exchangeDestination(roomAllKey(room)), queue))).toHaveLength(1);
    expect(gate.push(subscribe(exchangeDestination(roomUserKey(room, user)), queue))).toHaveLength(1);
  });

  it.each([
    ['a name not of the page format', () => 'stomp-subscription-chosen', () => exchangeDestination(roomAllKey(room))],
    ['another name format with the right length', () => `matrix-${newPageQueueName()}`, () => exchangeDestination(roomAllKey(room))],
    ['a page name on the instructor queue', newPageQueueName, () => queueDestination(instructorQueueName(room, user))],
  ])('refuses x-queue-name with %s', (_, name, destination) => {
    expect(refusal(() => connected().push(subscribe(destination(), { 'x-queue-name': name() })))).toBe('header');
  });

  it('refuses a second queue name on one connection, and a third SUBSCRIBE naming the queue', () => {
    const gate = connected();
    const queue = newPageQueueName();
    gate.push(subscribe(exchangeDestination(roomAllKey(room)), { 'x-queue-name': queue }));
    expect(refusal(() => gate.push(subscribe(exchangeDestination(roomUserKey(room, user)), { 'x-queue-name': newPageQueueName() })))).toBe('header');
    gate.push(subscribe(exchangeDestination(roomUserKey(room, user)), { 'x-queue-name': queue }));
    const other = randomUUID();
    expect(refusal(() => gate.push(subscribe(exchangeDestination(roomAllKey(other)), { 'x-queue-name': queue })))).toBe('too_many_subscriptions');
  });

  it('refuses a repeated destination header, whichever one a server would pick', () => {
    const frame = `SUBSCRIBE\nid:1\ndestination:${exchangeDestination(roomAllKey(room))}\ndestination:/queue/q\n\n\0`;
    expect(refusal(() => connected().push(clientFrame(frame)))).toBe('header');
  });

  it('refuses a duplicate destination and the subscription over the limit, and counts an unsubscribe', () => {
    const gate = connected();
    const all = exchangeDestination(roomAllKey(room));
    gate.push(subscribe(all, {}, 'a'));
    expect(refusal(() => gate.push(subscribe(all)))).toBe('duplicate_subscription');

    const g2 = connected();
    const rooms = Array.from({ length: 5 }, () => exchangeDestination(roomAllKey(randomUUID())));
    for (const d of rooms.slice(0, 4)) g2.push(subscribe(d, {}, d));
    expect(refusal(() => g2.push(subscribe(rooms[4]!)))).toBe('too_many_subscriptions');

    const g3 = connected();
    for (const d of rooms.slice(0, 4)) g3.push(subscribe(d, {}, d));
    g3.push(clientFrame(stomp('UNSUBSCRIBE', { id: rooms[0]! })));
    expect(g3.push(subscribe(rooms[4]!))).toHaveLength(1);
  });

  it('refuses a connection that subscribes and unsubscribes in a loop, past a few times its cap', () => {
    const gate = connected();
    const all = exchangeDestination(roomAllKey(room));
    const lifetime = limits.maxSubscriptions * 4;
    for (let i = 0; i < lifetime; i++) {
      gate.push(subscribe(all, {}, `s${i}`));
      gate.push(clientFrame(stomp('UNSUBSCRIBE', { id: `s${i}` })));
    }
    expect(refusal(() => gate.push(subscribe(all, {}, 'one-more')))).toBe('too_many_subscriptions');
  });

  it('refuses frames over the size limit, compressed, unmasked or malformed ones', () => {
    const big = 'x'.repeat(limits.maxFrameBytes + 1);
    expect(refusal(() => connected().push(clientFrame(stomp('ACK', { id: big }))))).toBe('frame_too_large');
    // Over the limit in STOMP bytes even when each WebSocket frame is small.
    const g = connected();
    expect(
      refusal(() => {
        g.push(clientFrame('ACK\nid:', { fin: false }));
        for (let i = 0; i < 70; i++) g.push(clientFrame('x'.repeat(1024), { opcode: OPCODE.continuation, fin: false }));
      }),
    ).toBe('frame_too_large');
    expect(refusal(() => connected().push(clientFrame(stomp('ACK', { id: '1' }), { rsv: 0x40 })))).toBe('compressed');
    const unmasked = Buffer.from([0x81, 0x01, 0x0a]);
    expect(refusal(() => connected().push(unmasked))).toBe('malformed');
    expect(refusal(() => connected().push(clientFrame('x', { opcode: OPCODE.continuation })))).toBe('malformed');
    expect(refusal(() => connected().push(clientFrame('a'.repeat(126), { opcode: OPCODE.ping })))).toBe('malformed');
    expect(refusal(() => connected().push(clientFrame('ACK\nid\n\n\0')))).toBe('malformed');
    expect(refusal(() => connected().push(clientFrame('ACK\nid:\\x\n\n\0')))).toBe('malformed');
  });

  it('reads a body by its content-length, NULs included', () => {
    const reader = new StompStreamReader(1024);
    const heads = reader.push(Buffer.from('NACK\ncontent-length:3\nid:1\n\na\0b\0\n\nACK\nid:2\n\n\0'));
    expect(heads.map((h) => h.command)).toEqual(['NACK', 'ACK']);
    expect(reader.inHead).toBe(false);
  });
});

describe("following the broker's frames", () => {
  it('finds frame boundaries and the first command, across chunks', () => {
    const connectedFrame = serverFrame(OPCODE.text, Buffer.from('CONNECTED\nversion:1.2\n\n\0'));
    const big = serverFrame(OPCODE.text, Buffer.alloc(70_000, 0x41));
    const wire = Buffer.concat([connectedFrame, big, serverFrame(OPCODE.text, Buffer.from('\n'))]);
    const tracker = new ServerFrameBoundaries();
    tracker.advance(wire.subarray(0, 5));
    expect(tracker.atBoundary).toBe(false);
    expect(tracker.firstCommand).toBe(null);
    tracker.advance(wire.subarray(5, connectedFrame.length + 3));
    expect(tracker.firstCommand).toBe('CONNECTED');
    // Stopping at the boundary: the rest of the big frame, nothing more.
    const rest = wire.subarray(connectedFrame.length + 3);
    expect(tracker.advance(rest, true)).toBe(big.length - 3);
    expect(tracker.atBoundary).toBe(true);
  });

  it('reads an ERROR frame as the first command', () => {
    const tracker = new ServerFrameBoundaries();
    tracker.advance(serverFrame(OPCODE.text, errorFrame('Access refused', 'bad login')));
    expect(tracker.firstCommand).toBe('ERROR');
    expect(tracker.atBoundary).toBe(true);
  });
});
