import { mkdtemp, readFile, readdir, rm, writeFile, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../runtime/config';
import { API_CSP } from '../../runtime/security-headers';
import { PAGE_CSP } from '../src/http/security-headers';
import { ApiClient } from '../../testkit/api-client';
import { makeUser, startHarness, type Harness, type TestUser } from '../../testkit/harness';

const staticDir = path.join(repoRoot, 'web', 'static');
let h: Harness;
let webDir: string;
let user: TestUser;

beforeAll(async () => {
  // The pages as built (web/dist) without running the build: the HTML is copied as is.
  webDir = await mkdtemp(path.join(os.tmpdir(), 'roomcast-pages-'));
  for (const f of await readdir(staticDir)) await copyFile(path.join(staticDir, f), path.join(webDir, f));
  await writeFile(path.join(webDir, 'learner.js'), 'export {};\n');
  h = await startHarness({ webDir });
  user = await makeUser(h, 'learner');
});
afterAll(async () => {
  await h.close();
  await rm(webDir, { recursive: true, force: true });
});

const COMMON = {
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

function expectHeaders(headers: Headers, csp: string, what: string): void {
  for (const [name, value] of Object.entries(COMMON)) expect(headers.get(name), `${name} on ${what}`).toBe(value);
  expect(headers.get('content-security-policy'), `CSP on ${what}`).toBe(csp);
}

describe('security headers', () => {
  it('sends the page policy with frame-ancestors on both pages, as a header', async () => {
    for (const page of ['/', '/index.html', '/instructor.html']) {
      const res = await h.api.get(page);
      expect(res.status, page).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expectHeaders(res.headers, PAGE_CSP, page);
      expect(PAGE_CSP).toContain("frame-ancestors 'none'");
    }
  });

  it('keeps the header policy the meta tag policy plus what only a header can say', async () => {
    for (const file of ['index.html', 'instructor.html']) {
      const html = await readFile(path.join(staticDir, file), 'utf8');
      const meta = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
      expect(meta, file).toBeDefined();
      expect(PAGE_CSP).toBe(`${meta}; frame-ancestors 'none'`);
    }
  });

  it('sends nosniff, DENY, no-referrer and a deny-all policy on API answers, errors and 404s, and no-store under /api', async () => {
    const anonymous = new ApiClient(h.server.url);
    // [status, under /api, response]
    const cases: [number, boolean, Promise<{ status: number; headers: Headers }>][] = [
      [200, true, user.api.get('/api/me')],
      [200, false, h.api.get('/healthz')],
      [200, false, h.api.get('/metrics')],
      [401, true, anonymous.get('/api/me')],
      [400, true, anonymous.request('POST', '/api/auth/login', '{"username":')],
      [413, true, anonymous.request('POST', '/api/auth/login', JSON.stringify({ username: 'x'.repeat(100_000) }))],
      [415, true, anonymous.request('POST', '/api/auth/login', '{}', { 'content-type': 'text/plain' })],
      [404, true, anonymous.get('/api/nope')],
      [404, false, anonymous.get('/no-such-page.html')],
      [404, true, user.api.get('/api/rooms/not-a-room')],
    ];
    for (const [status, api, pending] of cases) {
      const res = await pending;
      const what = `${res.status} ${api ? 'API' : 'other'}`;
      expect(res.status, what).toBe(status);
      expectHeaders(res.headers, API_CSP, what);
      if (api) expect(res.headers.get('cache-control'), what).toBe('no-store');
    }
  });

  it('sends no X-Powered-By', async () => {
    expect((await h.api.get('/healthz')).headers.get('x-powered-by')).toBeNull();
  });
});
