/**
 * A real webhook receiver for tests and benchmarks: a node:http server on loopback (port 0) that
 * records every delivery and checks each one as an integrator would, with the `standardwebhooks`
 * package and the endpoint's secret. Each endpoint gets a path of its own; what a path answers
 * is scripted per delivery (fail twice, then 200; 410; hold the answer until released).
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { RoomEvent } from '../shared/protocol/events';

export interface Delivery {
  path: string;
  /** The webhook-id header. */
  id: string;
  timestamp: string;
  signature: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  event: RoomEvent;
  /** When the body was in (Date.now()). */
  at: number;
  /** What this receiver answered, even if the sender was gone by then (0: not answered yet). */
  status: number;
  /** Checked with `standardwebhooks` and the path's secret; null when no secret was given for the path. */
  verified: boolean | null;
  verifyError: string | null;
}

/** What a path answers one delivery: a status, headers, after a delay, or held until `release()`. */
export interface Answer {
  status?: number;
  headers?: Record<string, string>;
  /** Answers this much later (a slow receiver). */
  delayMs?: number;
  hold?: boolean;
}

/** Decides the answer to the n-th delivery (1-based) of this path. */
export type Script = (d: Delivery, n: number) => Answer;

export class WebhookReceiver {
  readonly deliveries: Delivery[] = [];
  private readonly secrets = new Map<string, string>();
  private readonly scripts = new Map<string, Script>();
  private readonly counts = new Map<string, number>();
  private readonly held = new Set<{ res: http.ServerResponse; answer: () => void }>();
  private readonly changed = new EventEmitter();

  private constructor(
    private readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(): Promise<WebhookReceiver> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const receiver = new WebhookReceiver(server, (server.address() as AddressInfo).port);
    server.on('request', (req, res) => receiver.handle(req, res));
    return receiver;
  }

  /** The URL of `path` (e.g. "/a"). */
  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Deliveries to `path` are verified with this secret from now on. */
  secret(path: string, secret: string): void {
    this.secrets.set(path, secret);
  }

  /** How `path` answers from now on (default: 204 to everything). */
  script(path: string, script: Script): void {
    this.scripts.set(path, script);
  }

  to(path: string): Delivery[] {
    return this.deliveries.filter((d) => d.path === path);
  }

  /** Resolves once `check` holds, looking again at every delivery; rejects after `timeoutMs`. */
  async until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    if (check()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.changed.off('delivery', look);
        reject(new Error(`timed out waiting for ${what} (${this.deliveries.length} deliveries so far)`));
      }, timeoutMs);
      const look = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.changed.off('delivery', look);
        resolve();
      };
      this.changed.on('delivery', look);
    });
  }

  /** Answers every held delivery as its script said (204 unless it gave a status). */
  release(): void {
    for (const h of this.held) h.answer();
    this.held.clear();
  }

  async close(): Promise<void> {
    for (const h of this.held) h.res.destroy();
    this.held.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const body = Buffer.concat(chunks).toString('utf8');
      const header = (name: string): string => String(req.headers[name] ?? '');
      const d: Delivery = {
        path,
        id: header('webhook-id'),
        timestamp: header('webhook-timestamp'),
        signature: header('webhook-signature'),
        headers: req.headers,
        body,
        event: JSON.parse(body) as RoomEvent,
        at: Date.now(),
        status: 0,
        verified: null,
        verifyError: null,
      };
      const secret = this.secrets.get(path);
      if (secret) {
        try {
          new Webhook(secret).verify(body, { 'webhook-id': d.id, 'webhook-timestamp': d.timestamp, 'webhook-signature': d.signature });
          d.verified = true;
        } catch (err) {
          d.verified = false;
          d.verifyError = (err as Error).message;
        }
      }
      const n = (this.counts.get(path) ?? 0) + 1;
      this.counts.set(path, n);
      const answer = this.scripts.get(path)?.(d, n) ?? {};
      const reply = (): void => {
        d.status = answer.status ?? 204;
        res.writeHead(d.status, answer.headers).end();
        this.changed.emit('delivery');
      };
      this.deliveries.push(d);
      if (answer.hold) this.held.add({ res, answer: reply });
      else if (answer.delayMs) setTimeout(reply, answer.delayMs);
      else reply();
      this.changed.emit('delivery');
    });
  }
}
