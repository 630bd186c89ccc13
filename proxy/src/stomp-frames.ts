/**
 * STOMP 1.2 framing of the client's byte stream (the payloads of its WebSocket messages, in
 * order: a STOMP frame may span messages, a message may hold several frames). The reader
 * hands out each frame's command and headers as soon as the blank line after them arrives,
 * so the gate can decide before any byte of the frame reaches the broker. Pure: no sockets.
 */
import { GateRefusal } from './gate-refusal';

export interface StompHead {
  command: string;
  /** In the order sent; repeats kept (the gate refuses them). */
  headers: Array<[name: string, value: string]>;
}

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;

/** CONNECT and STOMP frames carry their header values unescaped (STOMP 1.2, "Value Encoding"). */
const UNESCAPED_COMMANDS = new Set(['CONNECT', 'STOMP']);
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', c: ':', '\\': '\\' };

function unescapeValue(value: string): string {
  return value.replace(/\\(.?)/g, (_, c: string) => {
    const plain = ESCAPES[c];
    if (plain === undefined) throw new GateRefusal('malformed', 'undefined escape sequence in a STOMP header');
    return plain;
  });
}

/** Command and headers of one frame's head (the bytes before its blank line, EOLs included). */
export function parseHead(bytes: Buffer): StompHead {
  const lines = bytes.toString('utf8').split('\n');
  const command = (lines.shift() ?? '').replace(/\r$/, '');
  if (!/^[A-Z]+$/.test(command)) throw new GateRefusal('malformed', 'not a STOMP command line');
  const escaped = !UNESCAPED_COMMANDS.has(command);
  const headers: Array<[string, string]> = [];
  for (const raw of lines) {
    const line = raw.replace(/\r$/, '');
    if (line === '') continue; // the blank line that ends the head
    if (line.includes('\r')) throw new GateRefusal('malformed', 'carriage return inside a STOMP header');
    const colon = line.indexOf(':');
    if (colon <= 0) throw new GateRefusal('malformed', 'STOMP header without a name and a colon');
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1);
    headers.push(escaped ? [unescapeValue(name), unescapeValue(value)] : [name, value]);
  }
  return { command, headers };
}

type State = { at: 'between' } | { at: 'head'; lineStart: number } | { at: 'body'; left: number | null };

/**
 * Splits the stream into frames, each at most `maxFrameBytes` long (head, body and NUL).
 * Heart-beats (bare EOLs between frames) are skipped.
 */
export class StompStreamReader {
  private state: State = { at: 'between' };
  private head: number[] = [];
  /** Bytes of the frame in progress. */
  private frameBytes = 0;
  private contentLength: number | null = null;

  constructor(private readonly maxFrameBytes: number) {}

  /** Inside a frame whose head has not ended yet: nothing of it may be forwarded so far. */
  get inHead(): boolean {
    return this.state.at === 'head';
  }

  /** Reads `bytes`; returns the heads completed in them, in order. */
  push(bytes: Buffer): StompHead[] {
    const heads: StompHead[] = [];
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i]!;
      const s = this.state;
      if (s.at === 'between') {
        if (c === LF || c === CR) continue;
        this.frameBytes = 0;
        this.head = [];
        this.state = { at: 'head', lineStart: 0 };
      }
      this.count();
      const t = this.state;
      if (t.at === 'head') {
        if (c === NUL) throw new GateRefusal('malformed', 'NUL inside a STOMP frame head');
        this.head.push(c);
        if (c !== LF) continue;
        const line = this.head.length - 1 - t.lineStart;
        const blank = line === 0 || (line === 1 && this.head[t.lineStart] === CR);
        if (blank && t.lineStart > 0) {
          const head = parseHead(Buffer.from(this.head));
          heads.push(head);
          this.state = { at: 'body', left: this.bodyLength(head) };
        } else if (blank) throw new GateRefusal('malformed', 'empty STOMP command line');
        else t.lineStart = this.head.length;
      } else if (t.at === 'body') {
        if (t.left === null) {
          if (c === NUL) this.state = { at: 'between' };
        } else if (t.left > 0) t.left--;
        else if (c === NUL) this.state = { at: 'between' };
        else throw new GateRefusal('malformed', 'STOMP frame body longer than its content-length');
      }
    }
    return heads;
  }

  private count(): void {
    if (++this.frameBytes > this.maxFrameBytes) throw new GateRefusal('frame_too_large', `STOMP frame larger than ${this.maxFrameBytes} bytes`);
  }

  private bodyLength(head: StompHead): number | null {
    const declared = head.headers.find(([name]) => name === 'content-length')?.[1];
    if (declared === undefined) return null;
    if (!/^\d{1,9}$/.test(declared)) throw new GateRefusal('header', 'content-length is not a number');
    const n = Number(declared);
    if (n > this.maxFrameBytes) throw new GateRefusal('frame_too_large', `STOMP frame larger than ${this.maxFrameBytes} bytes`);
    return n;
  }
}

/** Escapes a header value for a server frame (STOMP 1.2). */
const escapeValue = (v: string): string => v.replace(/[\\\n\r:]/g, (c) => ({ '\\': '\\\\', '\n': '\\n', '\r': '\\r', ':': '\\c' })[c] ?? c);

/** The ERROR frame the proxy sends before it closes a connection it refuses. */
export function errorFrame(message: string, detail: string): Buffer {
  const body = Buffer.from(detail, 'utf8');
  const head = `ERROR\nmessage:${escapeValue(message)}\ncontent-type:text/plain\ncontent-length:${body.length}\n\n`;
  return Buffer.concat([Buffer.from(head, 'utf8'), body, Buffer.from([NUL])]);
}
