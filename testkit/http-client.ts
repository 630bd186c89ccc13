/** A keep-alive HTTP(S) JSON client for load generation (fetch cannot trust a custom CA on Node 20). */
import http from 'node:http';
import https from 'node:https';

export interface JsonResponse {
  status: number;
  body: unknown;
}

export class HttpClient {
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;
  constructor(
    private readonly baseUrl: string,
    opts: { ca?: string; maxSockets?: number } = {},
  ) {
    const tls = baseUrl.startsWith('https:');
    this.mod = tls ? https : http;
    this.agent = tls
      ? new https.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64, ca: opts.ca, rejectUnauthorized: Boolean(opts.ca) })
      : new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64 });
  }

  request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = this.mod.request(
        `${this.baseUrl}${path}`,
        {
          method,
          agent: this.agent,
          headers: { ...(data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}), ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : null;
            } catch {
              // keep text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
