import { createHash, randomBytes } from 'node:crypto';
import { simpleParser, type ParsedMail } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAILED_LINK_LIMITS } from '../src/auth/attempt-limiter';
import { ApiClient, type ApiResponse } from '../../testkit/api-client';
import { PASSWORD, freshAddress, makeUser, startHarness, type Harness, type TestUser } from '../../testkit/harness';
import { readMailbox } from '../../testkit/mailbox';
import { connectStomp, waitFor, webStompUrl, type StompSession } from '../../testkit/stomp';

let h: Harness;
const open: StompSession[] = [];

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await Promise.all(open.map((s) => s.disconnect()));
  await h.close();
});

const NEW_PASSWORD = 'a-brand-new-password';

/** A fresh address in the test domain, so each test reads only its own mailbox. */
const address = (): string => `rc-${randomBytes(5).toString('hex')}@example.test`;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

const query = <R extends Record<string, unknown>>(sql: string, params: unknown[]): Promise<R[]> =>
  h.server.services.pool.query<R>(sql, params).then((r) => r.rows);

/** Gives the user an address directly in the table: verified (as a completed check leaves it) or not. */
async function withAddress(user: TestUser, o: { verified: boolean }, email = address()): Promise<string> {
  await query('UPDATE users SET email = $2, email_verified_at = CASE WHEN $3 THEN now() END WHERE id = $1', [user.id, email, o.verified]);
  return email;
}

/** The one mail in the address's mailbox, parsed; waits for it. */
async function theMail(email: string): Promise<ParsedMail> {
  await waitFor(() => readMailbox(h.config, email).length > 0, `a mail to ${email}`);
  const delivered = readMailbox(h.config, email);
  expect(delivered).toHaveLength(1);
  return simpleParser(delivered[0]!.raw);
}

/**
 * The link to `path` a mail carries, in its text and (the same) in its HTML, as the public URL
 * names it; and the same link on this test's own app server, with its token.
 */
function linkIn(mail: ParsedMail, path: string): { local: string; token: string } {
  const pattern = new RegExp(`${h.config.publicUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/api${path}\\?token=([\\w-]+)`);
  const inText = pattern.exec(mail.text ?? '');
  expect(inText, mail.text).not.toBeNull();
  expect(String(mail.html)).toContain(inText![0]);
  const url = new URL(inText![0]);
  return { local: `${h.server.url}${url.pathname}${url.search}`, token: inText![1]! };
}

const postForm = (url: string, fields: Record<string, string> = {}): Promise<Response> =>
  fetch(url, { method: 'POST', body: new URLSearchParams(fields) });

/**
 * Sets the user's address from a client address of its own: setting one mails a link, which is
 * limited per client address (as a proxy reports it), and every test here would otherwise share
 * loopback's budget, across runs too.
 */
const putEmail = (user: TestUser, email: string, from = freshAddress()): Promise<ApiResponse> =>
  user.api.request('PUT', '/api/account/email', JSON.stringify({ email }), { 'x-forwarded-for': from });

async function expectInvalidLink(res: Response): Promise<void> {
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_link');
}

describe('an address and its check', () => {
  it('mails one mailbox at most a few links an hour, whoever asks: then 429 with Retry-After', async () => {
    const email = address();
    const { maxFailures: max } = MAILED_LINK_LIMITS.perAccount;
    const users = await Promise.all(Array.from({ length: max + 1 }, () => makeUser(h, 'learner')));
    const statuses: number[] = [];
    // Each user claims the address in turn and frees it again, each from a client address of its own.
    for (const u of users) {
      const res = await putEmail(u, email);
      statuses.push(res.status);
      if (res.status === 200) await query('UPDATE users SET email = NULL WHERE id = $1', [u.id]);
      else expect([res.body.error.code, Number(res.headers.get('retry-after')) > 0]).toEqual(['too_many_attempts', true]);
    }
    expect(statuses).toEqual([...Array<number>(max).fill(200), 429]);
  });

  it('counts one inbox however its address is dressed up (+tags, Gmail dots)', async () => {
    const name = randomBytes(4).toString('hex');
    const { maxFailures: max } = MAILED_LINK_LIMITS.perAccount;
    const user = await makeUser(h, 'learner');
    const statuses: number[] = [];
    for (let i = 0; i <= max; i++) statuses.push((await putEmail(user, `${name.slice(0, 4)}.${name.slice(4)}+try${i}@gmail.com`)).status);
    expect(statuses).toEqual([...Array<number>(max).fill(200), 429]);
    expect((await putEmail(user, `${name}@googlemail.com`)).status).toBe(429);
  });

  it('stores a new address unverified, mails a link whose GET only asks, whose POST verifies, and only once', async () => {
    const user = await makeUser(h, 'learner');
    const email = address();
    const set = await putEmail(user, email.toUpperCase());
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    const unverified = { username: user.username, displayName: user.username, role: 'learner', email, emailVerified: false };
    expect(set.body).toEqual(unverified);
    expect((await user.api.get('/api/account')).body).toEqual(unverified);

    const mail = await theMail(email);
    expect(mail.subject).toBe('Confirm your e-mail address for roomcast');
    expect(mail.text).toContain('24 hours');
    expect(mail.html).toBeTruthy();
    const { local, token } = linkIn(mail, '/account/verify-email');
    // Only the link's digest is stored.
    expect(await query(`SELECT purpose, email FROM email_tokens WHERE token_hash = $1`, [sha256(token)])).toEqual([{ purpose: 'verify_email', email }]);
    expect(await query(`SELECT 1 FROM email_tokens WHERE token_hash = $1 OR email = $1`, [token])).toEqual([]);

    // A mail scanner fetching the link verifies nothing.
    const page = await fetch(local);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("form-action 'self'");
    const html = await page.text();
    expect(html).toContain('<form method="post"');
    expect(html).toContain(email);
    expect((await user.api.get('/api/account')).body.emailVerified).toBe(false);

    const confirmed = await postForm(local);
    expect(confirmed.status).toBe(200);
    expect(await confirmed.text()).toContain('confirmed');
    expect((await user.api.get('/api/account')).body).toEqual({ ...unverified, emailVerified: true });

    await expectInvalidLink(await postForm(local));
    await expectInvalidLink(await fetch(local));
  });

  it('voids the link mailed for an address once the user sets another', async () => {
    const user = await makeUser(h, 'learner');
    const first = address();
    expect((await putEmail(user, first)).status).toBe(200);
    const { local } = linkIn(await theMail(first), '/account/verify-email');
    const second = address();
    expect((await putEmail(user, second)).status).toBe(200);
    await expectInvalidLink(await postForm(local));
    expect((await user.api.get('/api/account')).body).toMatchObject({ email: second, emailVerified: false });
    await postForm(linkIn(await theMail(second), '/account/verify-email').local);
    expect((await user.api.get('/api/account')).body).toMatchObject({ email: second, emailVerified: true });
  });

  it('refuses an address another account has, in any case, with 409 email_taken', async () => {
    const [owner, other] = [await makeUser(h, 'learner'), await makeUser(h, 'learner')];
    const email = await withAddress(owner, { verified: true });
    const taken = await putEmail(other, email.toUpperCase());
    expect([taken.status, taken.body.error.code]).toEqual([409, 'email_taken']);
    expect((await other.api.get('/api/account')).body).toMatchObject({ email: null, emailVerified: false });
  });

  it('refuses a malformed or overlong address with 400, and needs a login', async () => {
    const user = await makeUser(h, 'learner');
    for (const body of [{ email: 'not-an-address' }, { email: `${'a'.repeat(250)}@example.test` }, {}, { email: address(), extra: 1 }]) {
      const res = await user.api.put('/api/account/email', body);
      expect([res.status, res.body.error.code], JSON.stringify(body)).toEqual([400, 'invalid_request']);
    }
    expect((await user.api.get('/api/account')).body.email).toBeNull();
    const nobody = new ApiClient(h.server.url);
    expect((await nobody.put('/api/account/email', { email: address() })).status).toBe(401);
    expect((await nobody.get('/api/account')).status).toBe(401);
  });

  it('refuses a made-up verify link', async () => {
    const local = `${h.server.url}/api/account/verify-email?token=${randomBytes(32).toString('base64url')}`;
    await expectInvalidLink(await fetch(local));
    await expectInvalidLink(await postForm(local));
    await expectInvalidLink(await postForm(`${h.server.url}/api/account/verify-email`));
  });
});

describe('password reset', () => {
  const requestReset = (email: string, from = freshAddress()): Promise<ApiResponse> =>
    new ApiClient(h.server.url).request('POST', '/api/auth/password-reset', JSON.stringify({ email }), { 'x-forwarded-for': from });

  const confirm = (body: Record<string, string>): Promise<ApiResponse> => new ApiClient(h.server.url).post('/api/auth/password-reset/confirm', body);

  /** Resolves once every reset request for the address has been worked (any mail it makes is queued). */
  async function requestsWorked(email: string, count: number): Promise<void> {
    await waitFor(async () => {
      const [row] = await query<{ done: number; all: number }>(
        `SELECT count(*) FILTER (WHERE state = 'done')::int AS done, count(*)::int AS all FROM jobs WHERE queue = 'password_reset' AND payload->>'email' = $1`,
        [email],
      );
      return row!.all === count && row!.done === count;
    }, `the reset requests for ${email}`);
  }

  const mailJobsTo = async (email: string): Promise<number> =>
    (await query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE queue = 'mail' AND payload->>'to' = $1`, [email]))[0]!.n;

  const login = (username: string, password: string): Promise<ApiResponse> => new ApiClient(h.server.url).post('/api/auth/login', { username, password });

  /** A verified user whose reset mail has arrived: its link, on this app server. */
  async function resetLinkFor(user: TestUser): Promise<{ email: string; local: string; token: string; mail: ParsedMail }> {
    const email = await withAddress(user, { verified: true });
    const asked = await requestReset(email);
    expect([asked.status, asked.body]).toEqual([202, {}]);
    const mail = await theMail(email);
    return { email, mail, ...linkIn(mail, '/auth/password-reset') };
  }

  it('mails a verified address a link that sets a new password once, ends every session and closes live broker connections', async () => {
    const user = await makeUser(h, 'learner');
    const secondDevice = await login(user.username, PASSWORD);
    const token = await user.api.post('/api/broker-token');
    const stomp = await connectStomp(webStompUrl(h.config), token.body.login, token.body.passcode);
    open.push(stomp);
    let closed = false;
    void stomp.closed.then(() => (closed = true));

    const { mail, local, token: linkToken } = await resetLinkFor(user);
    expect(mail.subject).toBe('Reset your roomcast password');
    expect(mail.text).toContain('30 minutes');
    expect(mail.html).toBeTruthy();
    expect(await query(`SELECT purpose FROM email_tokens WHERE token_hash = $1`, [sha256(linkToken)])).toEqual([{ purpose: 'password_reset' }]);

    // The link's GET shows a form and changes nothing.
    const page = await fetch(local);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("form-action 'self'");
    const html = await page.text();
    expect(html).toContain('<form method="post" action="/api/auth/password-reset/confirm"');
    expect(html).toContain(`name="token" value="${linkToken}"`);
    expect((await user.api.get('/api/me')).status).toBe(200);

    // The form, as a browser posts it.
    const done = await postForm(`${h.server.url}/api/auth/password-reset/confirm`, { token: linkToken, password: NEW_PASSWORD, passwordAgain: NEW_PASSWORD });
    expect(done.status).toBe(200);
    expect(done.headers.get('content-type')).toMatch(/^text\/html/);

    await waitFor(() => closed, 'the live broker connection to close');
    expect((await user.api.get('/api/me')).status).toBe(401);
    expect((await user.api.withToken(secondDevice.body.token).get('/api/me')).status).toBe(401);
    expect((await login(user.username, PASSWORD)).status).toBe(401);
    expect((await login(user.username, NEW_PASSWORD)).status).toBe(200);

    const again = await confirm({ token: linkToken, password: 'yet-another-password' });
    expect([again.status, again.body.error.code]).toEqual([400, 'invalid_link']);
    await expectInvalidLink(await fetch(local));
    expect((await login(user.username, NEW_PASSWORD)).status).toBe(200);
  });

  it('answers an unknown and an unverified address exactly as a verified one, and mails neither', async () => {
    const verified = await withAddress(await makeUser(h, 'learner'), { verified: true });
    const unverifiedUser = await makeUser(h, 'learner');
    const unverified = await withAddress(unverifiedUser, { verified: false });
    const unknown = address();

    const answers = [];
    for (const email of [verified, unverified, unknown]) {
      const res = await requestReset(email);
      answers.push({ status: res.status, body: res.body, type: res.headers.get('content-type'), length: res.headers.get('content-length') });
    }
    expect(answers[0]).toEqual({ status: 202, body: {}, type: 'application/json; charset=utf-8', length: '2' });
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);

    for (const email of [verified, unverified, unknown]) await requestsWorked(email, 1);
    expect(await mailJobsTo(verified)).toBe(1);
    expect(await mailJobsTo(unverified)).toBe(0);
    expect(await mailJobsTo(unknown)).toBe(0);
    expect(await query(`SELECT 1 FROM email_tokens WHERE user_id = $1`, [unverifiedUser.id])).toEqual([]);
    await theMail(verified);
    expect(readMailbox(h.config, unverified)).toHaveLength(0);
  });

  it('refuses an expired link, and leaves the password as it was', async () => {
    const user = await makeUser(h, 'learner');
    const { local, token } = await resetLinkFor(user);
    await query(`UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1`, [sha256(token)]);
    await expectInvalidLink(await fetch(local));
    const res = await confirm({ token, password: NEW_PASSWORD });
    expect([res.status, res.body.error.code]).toEqual([400, 'invalid_link']);
    expect((await login(user.username, PASSWORD)).status).toBe(200);
    expect((await user.api.get('/api/me')).status).toBe(200);
  });

  it('lets exactly one of two concurrent confirms of a link through', async () => {
    const user = await makeUser(h, 'learner');
    const { token } = await resetLinkFor(user);
    const results = await Promise.all([confirm({ token, password: NEW_PASSWORD }), confirm({ token, password: 'the-other-password' })]);
    expect(results.map((r) => r.status).sort()).toEqual([204, 400]);
    const winner = results[0]!.status === 204 ? NEW_PASSWORD : 'the-other-password';
    expect((await login(user.username, winner)).status).toBe(200);
  });

  it('refuses a password the rules refuse or two that differ, and the link still works after', async () => {
    const user = await makeUser(h, 'learner');
    const { token } = await resetLinkFor(user);
    const short = await confirm({ token, password: 'short' });
    expect([short.status, short.body.error.code]).toEqual([400, 'invalid_request']);
    const differ = await confirm({ token, password: NEW_PASSWORD, passwordAgain: `${NEW_PASSWORD}!` });
    expect([differ.status, differ.body.error.code]).toEqual([400, 'invalid_request']);
    expect((await confirm({ token, password: NEW_PASSWORD })).status).toBe(204);
    expect((await login(user.username, NEW_PASSWORD)).status).toBe(200);
  });

  it('voids an earlier link when a newer one is mailed', async () => {
    const user = await makeUser(h, 'learner');
    const { email, token: older } = await resetLinkFor(user);
    expect((await requestReset(email)).status).toBe(202);
    await waitFor(() => readMailbox(h.config, email).length === 2, 'the second reset mail');
    const res = await confirm({ token: older, password: NEW_PASSWORD });
    expect([res.status, res.body.error.code]).toEqual([400, 'invalid_link']);
    expect(await query(`SELECT count(*)::int AS n FROM email_tokens WHERE user_id = $1 AND used_at IS NULL`, [user.id])).toEqual([{ n: 1 }]);
  });

  it('limits requests per address, known or not, so a mailbox cannot be flooded: then 429 with Retry-After', async () => {
    const email = await withAddress(await makeUser(h, 'learner'), { verified: true });
    const { maxFailures: max, windowSeconds } = MAILED_LINK_LIMITS.perAccount;
    // Each from another client address: only the per-address limit can refuse them.
    const statuses = [];
    for (let i = 0; i < max + 2; i++) statuses.push(await requestReset(email));
    expect(statuses.map((r) => r.status)).toEqual([...Array<number>(max).fill(202), 429, 429]);
    const refused = statuses[max]!;
    expect(refused.body.error.code).toBe('too_many_attempts');
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
    await requestsWorked(email, max);
    expect(await mailJobsTo(email)).toBe(max);

    const unknown = address();
    for (let i = 0; i < max; i++) expect((await requestReset(unknown)).status).toBe(202);
    expect((await requestReset(unknown)).status).toBe(429);
  });

  it('limits requests per client address across addresses', async () => {
    const from = freshAddress();
    const { maxFailures: max, windowSeconds } = MAILED_LINK_LIMITS.perAddress;
    for (let i = 0; i < max; i++) expect((await requestReset(address(), from)).status).toBe(202);
    const refused = await requestReset(address(), from);
    expect([refused.status, refused.body.error.code]).toEqual([429, 'too_many_attempts']);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(windowSeconds);
    expect((await requestReset(address(), freshAddress())).status).toBe(202);
  });

  it('refuses a malformed address with 400 and a made-up link with 400 invalid_link', async () => {
    const bad = await requestReset('not-an-address');
    expect([bad.status, bad.body.error.code]).toEqual([400, 'invalid_request']);
    const token = randomBytes(32).toString('base64url');
    await expectInvalidLink(await fetch(`${h.server.url}/api/auth/password-reset?token=${token}`));
    await expectInvalidLink(await fetch(`${h.server.url}/api/auth/password-reset`));
    const res = await confirm({ token, password: NEW_PASSWORD });
    expect([res.status, res.body.error.code]).toEqual([400, 'invalid_link']);
  });
});
