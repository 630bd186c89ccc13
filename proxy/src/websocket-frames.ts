/**
 * RFC 6455 framing, as far as the STOMP gate needs it: decoding the client's (masked) frames,
 * following frame boundaries in the broker's stream without copying it, and encoding the few
 * frames the proxy writes itself. Pure: no sockets here.
 */
import { GateRefusal } from './gate-refusal';

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

const KNOWN_OPCODES = new Set<number>(Object.values(OPCODE));
const isControl = (opcode: number): boolean => opcode >= 0x8;

/** One client frame: its bytes as received (what is forwarded) and its unmasked payload. */
export interface ClientFrame {
  raw: Buffer;
  opcode: number;
  fin: boolean;
  payload: Buffer;
}

type Parsed = { frame: ClientFrame; end: number } | { need: number };

/**
 * Parses the frame starting at `offset`, or says how many bytes (from `offset`) it needs.
 * Throws a GateRefusal for anything a browser never sends: unmasked or compressed frames,
 * reserved bits or opcodes, fragmented or oversized control frames, payloads over `maxPayload`.
 */
export function parseClientFrame(buf: Buffer, offset: number, maxPayload: number): Parsed {
  const available = buf.length - offset;
  if (available < 2) return { need: 2 };
  const b0 = buf[offset]!;
  const b1 = buf[offset + 1]!;
  const fin = (b0 & 0x80) !== 0;
  const opcode = b0 & 0x0f;
  if ((b0 & 0x40) !== 0) throw new GateRefusal('compressed', 'compressed WebSocket frames are not accepted (no extension was negotiated)');
  if ((b0 & 0x30) !== 0) throw new GateRefusal('malformed', 'WebSocket frame with reserved bits set');
  if (!KNOWN_OPCODES.has(opcode)) throw new GateRefusal('malformed', `unknown WebSocket opcode ${opcode}`);
  if ((b1 & 0x80) === 0) throw new GateRefusal('malformed', 'client WebSocket frames must be masked');
  const len7 = b1 & 0x7f;
  if (isControl(opcode) && (!fin || len7 > 125)) throw new GateRefusal('malformed', 'fragmented or oversized WebSocket control frame');
  const headerLength = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + 4;
  if (available < headerLength) return { need: headerLength };
  let length: number;
  if (len7 === 126) length = buf.readUInt16BE(offset + 2);
  else if (len7 === 127) {
    const big = buf.readBigUInt64BE(offset + 2);
    length = big > BigInt(maxPayload) ? Infinity : Number(big);
  } else length = len7;
  if (length > maxPayload) throw new GateRefusal('frame_too_large', `WebSocket frame larger than ${maxPayload} bytes`);
  const total = headerLength + length;
  if (available < total) return { need: total };
  const maskAt = offset + headerLength - 4;
  const payload = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) payload[i] = buf[maskAt + 4 + i]! ^ buf[maskAt + (i & 3)]!;
  return { frame: { raw: buf.subarray(offset, offset + total), opcode, fin, payload }, end: offset + total };
}

/**
 * Splits the client's byte stream into frames. Bytes are joined only once a whole frame (or
 * header) is there, so a frame trickled in one byte at a time costs no more than one copy.
 */
export class ClientFrameReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private need = 2;
  /** A fragmented text or binary message is in progress. */
  private inMessage = false;

  constructor(private readonly maxPayload: number) {}

  push(chunk: Buffer): ClientFrame[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size < this.need) return [];
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    const frames: ClientFrame[] = [];
    let offset = 0;
    for (;;) {
      const parsed = parseClientFrame(buf, offset, this.maxPayload);
      if ('need' in parsed) {
        this.need = parsed.need;
        break;
      }
      this.checkSequence(parsed.frame);
      frames.push(parsed.frame);
      offset = parsed.end;
    }
    const rest = buf.subarray(offset);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return frames;
  }

  private checkSequence(f: ClientFrame): void {
    if (isControl(f.opcode)) return; // may come between the fragments of a message
    const continuation = f.opcode === OPCODE.continuation;
    if (continuation !== this.inMessage) throw new GateRefusal('malformed', continuation ? 'continuation frame outside a message' : 'new message inside a fragmented one');
    this.inMessage = !f.fin;
  }
}

/** Whether a client frame carries message data (STOMP bytes) rather than control. */
export const isDataFrame = (f: ClientFrame): boolean => !isControl(f.opcode);

/**
 * Follows frame boundaries in the broker's stream (unmasked frames) by reading only frame
 * headers: the proxy must know where a frame ends before it may write one of its own into
 * the stream. It also reads the command of the broker's first STOMP frame (CONNECTED or ERROR).
 */
export class ServerFrameBoundaries {
  private readonly header: number[] = [];
  private remaining = 0;
  private dataFrame = false;
  private firstLine = '';
  /** The command of the broker's first STOMP frame, once its first line has been seen. */
  firstCommand: string | null = null;

  /** Between two frames: a frame written now cannot split one of the broker's. */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.header.length === 0;
  }

  /**
   * Follows `chunk`, and returns how many of its bytes were taken: all of them, or with
   * `stopAtBoundary` only those up to the end of the frame in progress (0 when at a boundary).
   */
  advance(chunk: Buffer, stopAtBoundary = false): number {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        if (this.firstCommand === null && this.dataFrame) this.readFirstLine(chunk, i, n);
        this.remaining -= n;
        i += n;
        continue;
      }
      if (stopAtBoundary && this.header.length === 0) return i;
      this.header.push(chunk[i++]!);
      this.headerDone();
    }
    return i;
  }

  private headerDone(): void {
    const h = this.header;
    if (h.length < 2) return;
    const len7 = h[1]! & 0x7f;
    const needed = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((h[1]! & 0x80) !== 0 ? 4 : 0);
    if (h.length < needed) return;
    let length = len7;
    if (len7 === 126) length = (h[2]! << 8) | h[3]!;
    else if (len7 === 127) length = Number(Buffer.from(h.slice(2, 10)).readBigUInt64BE());
    this.dataFrame = (h[0]! & 0x0f) < 0x8;
    this.remaining = length;
    h.length = 0;
  }

  private readFirstLine(chunk: Buffer, from: number, n: number): void {
    for (let i = from; i < from + n; i++) {
      const c = chunk[i]!;
      if (c === 0x0a) {
        // Heart-beat EOLs before the frame are skipped.
        if (this.firstLine.replace(/\r$/, '') !== '') {
          this.firstCommand = this.firstLine.replace(/\r$/, '');
          return;
        }
        this.firstLine = '';
      } else if (this.firstLine.length < 32) this.firstLine += String.fromCharCode(c);
      else {
        this.firstCommand = this.firstLine;
        return;
      }
    }
  }
}

/** An unmasked (server-to-client) frame with `payload`. */
export function serverFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const header = length < 126 ? Buffer.alloc(2) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  header[0] = 0x80 | opcode;
  if (length < 126) header[1] = length;
  else if (length < 65536) {
    header[1] = 126;
    header.writeUInt16BE(length, 2);
  } else {
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  return Buffer.concat([header, payload]);
}
