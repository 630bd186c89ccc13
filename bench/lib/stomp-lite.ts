/**
 * A receive-only STOMP 1.2 client for the benchmark's subscribers: CONNECT, SUBSCRIBE with a
 * receipt, heart-beats both ways, MESSAGE bodies. @stomp/stompjs (what the browser client uses)
 * parses frames byte by byte, which at thousands of frames per second made the load generator
 * use almost as much CPU as the broker it measures; this one splits frames on NUL and reads
 * only what the benchmark needs.
 */
import WebSocket, { type ClientOptions } from 'ws';
import { newPageQueueName } from '../../shared/protocol/routing';

export interface StompLiteOptions {
  url: string;
  wsOptions: ClientOptions;
  login: string;
  passcode: string;
  /** Heart-beat both ways, ms (0: none). */
  heartbeatMs: number;
  /** Room key destinations, all on one queue of the connection's own, as the web client subscribes. */
  destinations: string[];
  onMessage: (body: string) => void;
  /** The connection ended after it was up, and why; not called for `close()`. */
  onDrop: (reason: string) => void;
}

export interface StompLite {
  close(): void;
}

interface Frame {
  command: string;
  headers: Map<string, string>;
  body: string;
}

function parseFrame(raw: string): Frame | null {
  const start = raw.search(/[^\r\n]/); // heart-beats are bare EOLs between frames
  if (start < 0) return null;
  const headerEnd = raw.indexOf('\n\n', start);
  const head = raw.slice(start, headerEnd < 0 ? raw.length : headerEnd).split('\n');
  const headers = new Map<string, string>();
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    // STOMP 1.2: the first occurrence of a repeated header wins.
    if (colon > 0 && !headers.has(line.slice(0, colon))) headers.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return { command: head[0] ?? '', headers, body: headerEnd < 0 ? '' : raw.slice(headerEnd + 2) };
}

/** Resolves once connected and every subscription's receipt has arrived. */
export function connectStompLite(o: StompLiteOptions): Promise<StompLite> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(o.url, ['v12.stomp'], o.wsOptions);
    let up = false;
    let closing = false;
    let buffer = '';
    let lastIn = Date.now();
    let pendingReceipts = o.destinations.length;
    const timers: NodeJS.Timeout[] = [];
    const end = (reason: string): void => {
      for (const t of timers) clearInterval(t);
      if (closing) return;
      closing = true;
      ws.terminate();
      if (up) o.onDrop(reason);
      else reject(new Error(reason));
    };
    const send = (command: string, headers: Record<string, string | number>): void => {
      const lines = Object.entries(headers).map(([k, v]) => `${k}:${v}`);
      ws.send(`${command}\n${lines.join('\n')}\n\n\0`);
    };
    const startHeartbeats = (server: string | undefined): void => {
      const [sx = 0, sy = 0] = (server ?? '0,0').split(',').map(Number);
      if (o.heartbeatMs > 0 && sy > 0) {
        timers.push(setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('\n'), Math.max(o.heartbeatMs, sy)));
      }
      if (o.heartbeatMs > 0 && sx > 0) {
        const ttl = Math.max(o.heartbeatMs, sx);
        timers.push(
          setInterval(() => {
            const silent = Date.now() - lastIn;
            if (silent > 2 * ttl) end(`no data from the server for ${silent} ms (heart-beat ${ttl} ms)`);
          }, ttl),
        );
      }
    };
    const onFrame = (f: Frame): void => {
      if (f.command === 'MESSAGE') o.onMessage(f.body);
      else if (f.command === 'CONNECTED') {
        startHeartbeats(f.headers.get('heart-beat'));
        const queue = newPageQueueName();
        o.destinations.forEach((destination, i) => send('SUBSCRIBE', { id: `s${i}`, destination, ack: 'auto', receipt: `r${i}`, 'x-queue-name': queue }));
      } else if (f.command === 'RECEIPT' && --pendingReceipts === 0) {
        up = true;
        resolve({
          close: () => {
            closing = true;
            for (const t of timers) clearInterval(t);
            ws.close();
          },
        });
      } else if (f.command === 'ERROR') end(`STOMP ERROR ${f.headers.get('message') ?? ''}`);
    };
    ws.on('open', () => send('CONNECT', { 'accept-version': '1.2', host: '/', login: o.login, passcode: o.passcode, 'heart-beat': `${o.heartbeatMs},${o.heartbeatMs}` }));
    ws.on('message', (data: Buffer) => {
      lastIn = Date.now();
      buffer += data.toString('utf8');
      let nul: number;
      while ((nul = buffer.indexOf('\0')) >= 0) {
        const frame = parseFrame(buffer.slice(0, nul));
        buffer = buffer.slice(nul + 1);
        if (frame) onFrame(frame);
      }
    });
    ws.on('error', (e: Error) => end(`socket error: ${e.message}`));
    ws.on('close', (code: number, reason: Buffer) => end(`socket closed by the server (${code}${reason.length ? ` ${reason.toString()}` : ''})`));
  });
}
