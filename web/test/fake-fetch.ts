/**
 * A scripted `fetch` for the client's REST calls other than sending (broker tokens, presence,
 * the API's own request shapes and error mapping). Like fake-room-server.ts it sits below the
 * real RoomcastApi, so status codes, error bodies, `Retry-After`, dropped and cut-off answers
 * reach the client exactly as a server's would. Each request is recorded; each answer is chosen
 * per route by the test, and may be held back until the test releases it (a request in flight).
 */
import { RoomcastApi } from '../src/client/index';

export interface SeenRequest {
  method: string;
  /** The whole URL the client asked for. */
  url: string;
  /** `url` without the base URL and query, as sent (percent-encoded): what routes match on. */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** The parsed JSON body, or undefined when none was sent. */
  body: unknown;
  keepalive: boolean;
}

export type Reply =
  | { status: number; body?: unknown; text?: string; headers?: Record<string, string> }
  /** No answer at all: fetch rejects, as it does offline. */
  | 'network'
  /** The status arrives but the body is cut off (connection reset mid-answer). */
  | 'cut-off';

export type Route = Reply | ((request: SeenRequest, nth: number) => Reply | Promise<Reply>);

export const BASE_URL = 'https://class.test';

export const json = (status: number, body: unknown, headers: Record<string, string> = {}): Reply => ({ status, body, headers });

/** The server's error body, `{error: {code, message}}`. */
export const apiError = (status: number, code: string, message: string, headers: Record<string, string> = {}): Reply =>
  json(status, { error: { code, message } }, headers);

/** A promise the test settles itself: an answer still on its way. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export class FakeFetch {
  /** Every request, in the order the client made them. */
  readonly requests: SeenRequest[] = [];
  /** Requests no route matched (a test mistake or a client bug); each was answered with a network failure. */
  readonly unrouted: string[] = [];
  private readonly routes = new Map<string, Route>();

  /** Answers `METHOD /path` (no query) with `route` from now on. */
  on(method: string, path: string, route: Route): this {
    this.routes.set(`${method} ${path}`, route);
    return this;
  }

  /** Requests to one route so far. */
  seen(method: string, path: string): SeenRequest[] {
    return this.requests.filter((r) => r.method === method && r.path === path);
  }

  /** A RoomcastApi whose every request goes to this fake. */
  api(options: { token?: string | null; baseUrl?: string } = {}): RoomcastApi {
    return new RoomcastApi({ baseUrl: options.baseUrl ?? BASE_URL, token: options.token === undefined ? 'session-token' : options.token, fetch: this.fetch });
  }

  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    const parsed = new URL(url, BASE_URL);
    const request: SeenRequest = {
      method: init?.method ?? 'GET',
      url,
      path: parsed.pathname,
      query: Object.fromEntries(parsed.searchParams),
      headers: { ...(init?.headers as Record<string, string> | undefined) },
      body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined,
      keepalive: init?.keepalive ?? false,
    };
    this.requests.push(request);
    const key = `${request.method} ${request.path}`;
    const route = this.routes.get(key);
    if (route === undefined) {
      this.unrouted.push(key);
      throw new TypeError(`fetch failed: no route for ${key}`);
    }
    const reply = typeof route === 'function' ? await route(request, this.seen(request.method, request.path).length) : route;
    if (reply === 'network') throw new TypeError('fetch failed');
    if (reply === 'cut-off') {
      const body = new ReadableStream({ start: (c) => c.error(new TypeError('terminated')) });
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    }
    const text = reply.text ?? (reply.body === undefined ? null : JSON.stringify(reply.body));
    const headers = { ...(reply.body === undefined ? {} : { 'content-type': 'application/json' }), ...reply.headers };
    return new Response(text, { status: reply.status, headers });
  };
}
