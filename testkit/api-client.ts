/** A small HTTP client for the app server's REST API, as a browser would use it. */
export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** The global fetch, or a stand-in (e.g. one that trusts a test CA over HTTPS). */
export type Fetch = (url: string, init: RequestInit) => Promise<Response>;

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    public token?: string,
    private readonly fetchImpl: Fetch = fetch,
  ) {}

  withToken(token: string): ApiClient {
    return new ApiClient(this.baseUrl, token, this.fetchImpl);
  }

  get<T = any>(path: string): Promise<ApiResponse<T>> {
    return this.request<T>('GET', path);
  }

  post<T = any>(path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    return this.request<T>('POST', path, body === undefined ? undefined : JSON.stringify(body), headers);
  }

  put<T = any>(path: string, body: unknown): Promise<ApiResponse<T>> {
    return this.request<T>('PUT', path, JSON.stringify(body));
  }

  /** Sends `raw` as the body unchanged (for malformed-JSON tests). */
  async request<T = any>(method: string, path: string, raw?: string, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const res = await this.fetchImpl(`${this.baseUrl}${path}`, {
      method,
      headers: {
        ...(raw === undefined ? {} : { 'content-type': 'application/json' }),
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...headers,
      },
      body: raw,
    });
    const text = await res.text();
    let body: any = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, headers: res.headers, body };
  }
}
