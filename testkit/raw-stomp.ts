/**
 * A STOMP client that sends exactly the frames a test writes (what an attacker's script would
 * do, unlike @stomp/stompjs), over `ws` through the proxy, and records every frame and the close.
 */
import WebSocket, { type ClientOptions } from 'ws';
import { waitFor } from './stomp';

export interface ReceivedFrame {
  command: string;
  headers: Record<string, string>;
  body: string;
}

export interface RawStomp {
  ws: WebSocket;
  frames: ReceivedFrame[];
  /** Resolves when the socket closes: the close code and reason, and when. */
  closed: Promise<{ code: number; reason: string; at: number }>;
  /** Sends one STOMP frame built from its parts (`\0` added). */
  send(command: string, headers?: Record<string, string>, body?: string): void;
  /** Waits for the first frame with this command. */
  next(command: string, timeoutMs?: number): Promise<ReceivedFrame>;
}

export const stompText = (command: string, headers: Record<string, string> = {}, body = ''): string =>
  `${command}\n${Object.entries(headers)
    .map(([k, v]) => `${k}:${v}\n`)
    .join('')}\n${body}\0`;

function parse(text: string): ReceivedFrame | null {
  const trimmed = text.replace(/^[\r\n]+/, '');
  if (trimmed === '') return null;
  const end = trimmed.indexOf('\n\n');
  const [command = '', ...lines] = trimmed.slice(0, end < 0 ? undefined : end).split('\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    // STOMP 1.2 escapes header values in every frame but CONNECTED.
    const value = line.slice(colon + 1);
    if (colon > 0) headers[line.slice(0, colon)] ??= command === 'CONNECTED' ? value : value.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', r: '\r', c: ':' })[c] ?? c);
  }
  return { command, headers, body: end < 0 ? '' : trimmed.slice(end + 2) };
}

/** Opens the WebSocket (rejects if the upgrade is refused); sends nothing yet. */
export function openRawStomp(url: string, options: ClientOptions): Promise<RawStomp> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['v12.stomp'], options);
    const frames: ReceivedFrame[] = [];
    let buffer = '';
    const closed = new Promise<{ code: number; reason: string; at: number }>((r) =>
      ws.once('close', (code, reason) => r({ code, reason: reason.toString(), at: Date.now() })),
    );
    ws.on('message', (data: Buffer) => {
      buffer += data.toString('utf8');
      let nul: number;
      while ((nul = buffer.indexOf('\0')) >= 0) {
        const frame = parse(buffer.slice(0, nul));
        buffer = buffer.slice(nul + 1);
        if (frame) frames.push(frame);
      }
    });
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        ws,
        frames,
        closed,
        send: (command, headers, body) => ws.send(stompText(command, headers, body)),
        async next(command, timeoutMs = 10_000) {
          await waitFor(() => frames.some((f) => f.command === command), `a ${command} frame`, timeoutMs);
          return frames.find((f) => f.command === command)!;
        },
      }),
    );
  });
}
