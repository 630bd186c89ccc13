/**
 * Bulk announcements against the real Exim (docs/campaigns.md): the load gate, the rate
 * ceilings, resuming exactly, and the listmonk failures each as a test (a pause-and-resume that
 * resends to everyone, a dropped connection that restarts from the top, a shutdown that marks a
 * campaign finished with recipients unsent).
 *
 * The app server here runs no campaign runner: each test starts its own with the settings it
 * needs (`campaignRunner`), in this process or in a child it kills.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CampaignBody } from '../../shared/protocol/campaigns';
import { ensureExim, eximQueueRun, setEximHook, silentLogger, stopExim } from '../../infra/index';
import { makeRoom, makeUser, startHarness, type Harness, type TestRoom } from '../../testkit/harness';
import { deliveriesByAddress, eximQueueCount, mailHeader } from '../../testkit/mailbox';
import { waitFor } from '../../testkit/stomp';
import { testConfig } from '../../testkit/test-config';
import { CAMPAIGN_BATCH, type Campaigns } from '../src/campaigns';
import { createLogger } from '../src/logger';
import { createMetrics, type Metrics } from '../src/metrics';
import { addMailableLearners, campaignRunner } from '../../testkit/campaign-runner';

let h: Harness;
const ADMIN_TOKEN = 'test-admin-token-campaigns-0123';

beforeAll(async () => {
  h = await startHarness({ config: testConfig({ ROOMCAST_ADMIN_TOKEN: ADMIN_TOKEN }), campaigns: false });
});
afterAll(async () => {
  setEximHook(h.config, 'slow-down', false);
  setEximHook(h.config, 'hold', false);
  await h.close();
});
// The rate ceilings count every campaign mail of the last hour; each test starts with the whole budget.
beforeEach(async () => {
  await h.server.services.pool.query('DELETE FROM mail_rate');
});

const sql = <T = Record<string, unknown>>(text: string, values: unknown[] = []) => h.server.services.pool.query<T & Record<string, unknown>>(text, values).then((r) => r.rows);

/** A room of one instructor (via the API) and `n` learners with verified addresses. */
async function classOf(n: number): Promise<{ room: TestRoom; emails: string[] }> {
  const room = await makeRoom(h, 0);
  const run = randomBytes(4).toString('hex');
  const emails = Array.from({ length: n }, (_, i) => `cmp-${run}-${i}@example.test`);
  await addMailableLearners(h.server.services.pool, room.id, emails);
  return { room, emails };
}

const deliveries = (emails: readonly string[]): Map<string, string[]> => deliveriesByAddress(h.config, emails);
const delivered = (emails: readonly string[]): number => [...deliveries(emails).values()].reduce((n, files) => n + files.length, 0);

async function runner(settings: Record<string, string>, metrics: Metrics = createMetrics(async () => 0)): Promise<Campaigns> {
  const config = testConfig(settings);
  const c = await campaignRunner(config, h.server.services.pool, createLogger(config, 'campaigns'), metrics);
  c.start();
  return c;
}

async function start(room: TestRoom, subject = 'Exam moved'): Promise<CampaignBody> {
  const res = await room.instructor.api.post('/api/campaigns', { roomIds: [room.id], subject, text: 'The exam moves to Friday, room 204.' });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.campaign;
}

async function campaign(room: TestRoom, id: string): Promise<CampaignBody> {
  const res = await room.instructor.api.get(`/api/campaigns/${id}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.campaign;
}

/** Resolves once the campaign is done and Exim has delivered everything it accepted. */
async function finished(room: TestRoom, id: string, timeoutMs = 60_000): Promise<CampaignBody> {
  await waitFor(async () => (await campaign(room, id)).state === 'done', `campaign ${id} done`, timeoutMs);
  await waitFor(async () => (await eximQueueCount(h.config)) === 0, 'Exim to deliver what it accepted', 20_000);
  return campaign(room, id);
}

function expectEachOnce(emails: readonly string[]): void {
  const counts = [...deliveries(emails).entries()].filter(([, files]) => files.length !== 1).map(([e, files]) => `${e}: ${files.length}`);
  expect(counts, 'addresses without exactly one mail').toEqual([]);
}

describe('campaigns against the real Exim', () => {
  it('500 recipients, the relay answers 421 from the 100th mail for a while: the gate slows, then every address gets exactly one mail', async () => {
    const { room, emails } = await classOf(500);
    const metrics = createMetrics(async () => 0);
    const c = await runner({ ROOMCAST_CAMPAIGN_RATE_PER_SECOND: '100' }, metrics);
    try {
      const started = await start(room);
      expect(started).toMatchObject({ state: 'running', recipients: 500 });
      await waitFor(() => delivered(emails) >= 100, 'the first 100 mails', 30_000);
      setEximHook(h.config, 'slow-down', true);
      const atBurst = delivered(emails);
      await new Promise((r) => setTimeout(r, 4000));
      const duringBurst = delivered(emails) - atBurst;
      // While every RCPT gets 421, the gate waits (1 s, 2 s, …) with one probe in between instead of sending on.
      const waiting = await campaign(room, started.id);
      expect(waiting.waiting ?? '').toMatch(/slow down|sends failed/);
      setEximHook(h.config, 'slow-down', false);
      const done = await finished(room, started.id);
      expect(done.counts).toMatchObject({ sent: 500, failed: 0, queued: 0, deferred: 0, sending: 0 });
      expectEachOnce(emails);
      expect(duringBurst).toBeLessThanOrEqual(CAMPAIGN_BATCH);
      const slowDowns = (await metrics.campaignSends.get()).values.find((v) => v.labels.answer === 'slow_down')?.value ?? 0;
      // One batch ran into the 421s, then probes one at a time: far fewer than the mails the burst would otherwise have refused.
      expect(slowDowns).toBeGreaterThan(0);
      expect(slowDowns).toBeLessThanOrEqual(CAMPAIGN_BATCH + 6);
      // Deferred recipients were tried again and their final answer is the relay's 250.
      const retried = await sql<{ answer: string }>(`SELECT answer FROM jobs WHERE queue = $1 AND attempts > 1`, [`campaign:${started.id}`]);
      expect(retried.length).toBeGreaterThan(0);
      for (const r of retried) expect(r.answer).toMatch(/^250 /);
    } finally {
      setEximHook(h.config, 'slow-down', false);
      await c.stop();
    }
  });

  it('a runner killed (SIGKILL) at about the 250th mail: after a restart every address has its mail, copies only for the batch in flight, with the same Message-ID', async () => {
    const { room, emails } = await classOf(500);
    const settings = { ROOMCAST_CAMPAIGN_RATE_PER_SECOND: '100' };
    const child = fork(fileURLToPath(new URL('./campaign-runner-process.ts', import.meta.url)), [JSON.stringify(settings)], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ROOMCAST_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise((resolve) => child.once('message', resolve));
    const started = await start(room);
    await waitFor(() => delivered(emails) >= 250, 'the first 250 mails from the doomed runner', 60_000);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(delivered(emails)).toBeLessThan(500);
    // What it held stays leased (3 min); make the leases end now, as time would.
    await sql(`UPDATE jobs SET lease_until = now() WHERE queue = $1 AND state = 'pending' AND lease_until > now()`, [`campaign:${started.id}`]);

    const c = await runner(settings);
    try {
      const done = await finished(room, started.id);
      expect(done.counts).toMatchObject({ sent: 500, failed: 0 });
      const byAddress = deliveries(emails);
      const missing = [...byAddress.entries()].filter(([, f]) => f.length === 0).map(([e]) => e);
      expect(missing, 'addresses skipped').toEqual([]);
      const copies = [...byAddress.values()].filter((f) => f.length > 1);
      expect(copies.length).toBeLessThanOrEqual(CAMPAIGN_BATCH);
      for (const files of copies) {
        const ids = new Set(files.map((f) => mailHeader(readFileSync(f, 'utf8'), 'Message-ID')));
        expect(ids.size, 'a copy carries the Message-ID of the first').toBe(1);
      }
    } finally {
      await c.stop();
    }
  });

  it('mail server stopped: the campaign pauses at the deadline with the reason and the stop point; started again, it resumes by itself and completes', async () => {
    const { room, emails } = await classOf(30);
    const c = await runner({ ROOMCAST_CAMPAIGN_PAUSE_AFTER_MS: '3000', ROOMCAST_CAMPAIGN_PROBE_EVERY_MS: '500', ROOMCAST_CAMPAIGN_RETRY_FIRST_MS: '300' });
    await stopExim(h.config, silentLogger);
    try {
      const started = await start(room);
      await waitFor(async () => (await campaign(room, started.id)).state === 'paused', 'the gate to pause the campaign', 30_000);
      const paused = await campaign(room, started.id);
      expect(paused).toMatchObject({ pausedBy: 'gate', pauseReason: expect.stringMatching(/failed.*for \d+ s/) });
      expect(paused.stopPoint?.counts.sent).toBe(0);
      expect(paused.stopPoint?.nextRecipientId).toMatch(/^[0-9a-f-]{36}$/);
      expect(delivered(emails)).toBe(0);
      // A second runner with a fresh gate (another app server, or a restart) probes once per interval too, not once per pass.
      const second = await runner({ ROOMCAST_CAMPAIGN_PAUSE_AFTER_MS: '3000', ROOMCAST_CAMPAIGN_PROBE_EVERY_MS: '1000', ROOMCAST_CAMPAIGN_RETRY_FIRST_MS: '300' });
      const attempts = async (): Promise<number> => (await sql<{ n: number }>(`SELECT coalesce(sum(attempts), 0)::int AS n FROM jobs WHERE queue = $1`, [`campaign:${started.id}`]))[0]!.n;
      try {
        const before = await attempts();
        await new Promise((r) => setTimeout(r, 3000));
        // Two runners, one probe each per second at most (the first one's every 500 ms): a handful, not the ceiling's 20 a second.
        expect((await attempts()) - before).toBeLessThanOrEqual(12);
      } finally {
        await second.stop();
      }
    } finally {
      await ensureExim(h.config, silentLogger);
    }
    try {
      const rows = await sql<{ id: string }>(`SELECT id FROM campaigns WHERE created_by = $1`, [room.instructor.id]);
      const done = await finished(room, rows[0]!.id as string);
      expect(done).toMatchObject({ state: 'done', counts: expect.objectContaining({ sent: 30 }) });
      expectEachOnce(emails);
    } finally {
      await c.stop();
    }
  });

  it('Exim’s queue held above the limit: the gate holds sending until the queue drains, then every address gets one mail', async () => {
    const { room, emails } = await classOf(20);
    const filler = `filler-${randomBytes(4).toString('hex')}@example.test`;
    setEximHook(h.config, 'hold', true);
    const transport = nodemailer.createTransport({ host: h.config.mail.host, port: h.config.mail.port, ignoreTLS: true, pool: true });
    let c: Campaigns | null = null;
    try {
      for (let i = 0; i < 12; i++) await transport.sendMail({ from: 'load@example.test', to: filler, subject: `filler ${i}`, text: 'x' });
      await waitFor(async () => (await eximQueueCount(h.config)) >= 12, 'the held mail to queue up', 10_000);
      c = await runner({ ROOMCAST_CAMPAIGN_MAX_QUEUE: '10' });
      const started = await start(room);
      await new Promise((r) => setTimeout(r, 2500));
      const held = await campaign(room, started.id);
      expect(held.counts.sent).toBe(0);
      expect(held.waiting).toMatch(/queue holds \d+ messages \(limit 10\)/);
      setEximHook(h.config, 'hold', false);
      await eximQueueRun(h.config);
      const done = await finished(room, started.id);
      expect(done.counts.sent).toBe(20);
      expectEachOnce(emails);
    } finally {
      setEximHook(h.config, 'hold', false);
      transport.close();
      await c?.stop();
    }
  });

  it('pause, then resume: nobody already sent gets a second mail; a stopped runner leaves the campaign running for the next (not finished)', async () => {
    const { room, emails } = await classOf(120);
    let c = await runner({ ROOMCAST_CAMPAIGN_RATE_PER_SECOND: '20' });
    try {
      const started = await start(room);
      await waitFor(() => delivered(emails) >= 30, 'the first 30 mails', 30_000);
      const pausedRes = await room.instructor.api.post(`/api/campaigns/${started.id}/pause`, {});
      expect(pausedRes.status).toBe(200);
      expect(pausedRes.body.campaign).toMatchObject({ state: 'paused', pausedBy: 'user' });
      // The batch being sent finishes; then nothing more goes.
      await waitFor(async () => (await campaign(room, started.id)).counts.sending === 0, 'the batch in flight to settle', 10_000);
      const atPause = (await campaign(room, started.id)).counts.sent;
      await new Promise((r) => setTimeout(r, 1500));
      expect((await campaign(room, started.id)).counts.sent).toBe(atPause);
      expect(atPause).toBeLessThan(120);

      expect((await room.instructor.api.post(`/api/campaigns/${started.id}/resume`, {})).status).toBe(200);
      await waitFor(() => delivered(emails) >= atPause + 20, 'more mails after the resume', 30_000);
      // A shutdown mid-campaign: it stays running with recipients queued, and the next runner finishes it.
      await c.stop();
      const afterStop = await campaign(room, started.id);
      expect(afterStop.state).toBe('running');
      expect(afterStop.counts.queued + afterStop.counts.deferred).toBeGreaterThan(0);
      c = await runner({ ROOMCAST_CAMPAIGN_RATE_PER_SECOND: '100' });
      await finished(room, started.id);
      expectEachOnce(emails);
    } finally {
      await c.stop();
    }
  });

  it('cancel: nothing more is sent, and every recipient not sent is cancelled', async () => {
    const { room, emails } = await classOf(100);
    const c = await runner({ ROOMCAST_CAMPAIGN_RATE_PER_SECOND: '20' });
    try {
      const started = await start(room);
      await waitFor(() => delivered(emails) >= 20, 'the first 20 mails', 30_000);
      const res = await room.instructor.api.post(`/api/campaigns/${started.id}/cancel`, {});
      expect(res.status).toBe(200);
      expect(res.body.campaign.state).toBe('cancelled');
      await waitFor(async () => (await campaign(room, started.id)).counts.sending === 0, 'the batch in flight to settle', 10_000);
      await waitFor(async () => (await eximQueueCount(h.config)) === 0, 'Exim to deliver', 10_000);
      const final = await campaign(room, started.id);
      const mailed = delivered(emails);
      await new Promise((r) => setTimeout(r, 1500));
      expect(delivered(emails)).toBe(mailed);
      expect(final.counts.sent).toBe(mailed);
      expect(final.counts.sent + final.counts.cancelled).toBe(100);
      expect(final.counts.cancelled).toBeGreaterThan(0);
      // A cancelled campaign cannot come back.
      const again = await room.instructor.api.post(`/api/campaigns/${started.id}/resume`, {});
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('campaign_state_conflict');
    } finally {
      await c.stop();
    }
  });

  it('the hourly ceiling holds across a restart: counted in Postgres, not in the runner', async () => {
    const { room, emails } = await classOf(50);
    const settings = { ROOMCAST_CAMPAIGN_RATE_PER_SECOND: '100', ROOMCAST_CAMPAIGN_RATE_PER_HOUR: '30' };
    let c = await runner(settings);
    try {
      const started = await start(room);
      await waitFor(async () => (await campaign(room, started.id)).counts.sent === 30, '30 mails, the hourly ceiling', 30_000);
      await waitFor(async () => /hourly ceiling \(30 mails per hour\)/.test((await campaign(room, started.id)).waiting ?? ''), 'the ceiling to show', 10_000);
      await c.stop();
      c = await runner(settings);
      await new Promise((r) => setTimeout(r, 2500));
      const after = await campaign(room, started.id);
      expect(after.counts.sent).toBe(30);
      expect(after.counts.queued).toBe(20);
      await waitFor(async () => (await eximQueueCount(h.config)) === 0, 'Exim to deliver', 10_000);
      expect(delivered(emails)).toBe(30);
      const [rate] = await sql<{ n: number }>(`SELECT sum(sent)::int AS n FROM mail_rate`);
      expect(rate?.n).toBe(30);
      await room.instructor.api.post(`/api/campaigns/${started.id}/cancel`, {});
    } finally {
      await c.stop();
    }
  });
});

describe('campaigns when the relay or the sender changes', () => {
  it('a relay that refuses our sender (550 at MAIL FROM) suppresses nobody: the campaign pauses, and completes once the relay takes mail again', async () => {
    const { room, emails } = await classOf(10);
    const c = await runner({ ROOMCAST_CAMPAIGN_PAUSE_AFTER_MS: '2000', ROOMCAST_CAMPAIGN_PROBE_EVERY_MS: '500', ROOMCAST_CAMPAIGN_RETRY_FIRST_MS: '300' });
    setEximHook(h.config, 'refuse-sender', true);
    try {
      const started = await start(room);
      await waitFor(async () => (await campaign(room, started.id)).state === 'paused', 'the gate to pause the campaign', 30_000);
      const paused = await campaign(room, started.id);
      expect(paused.pauseReason).toMatch(/relay_error/);
      expect(paused.counts).toMatchObject({ failed: 0, sent: 0 });
      const [suppressed] = await sql<{ n: number }>('SELECT count(*)::int AS n FROM mail_suppressions WHERE email = ANY($1::text[])', [emails]);
      expect(suppressed?.n).toBe(0);
      setEximHook(h.config, 'refuse-sender', false);
      const done = await finished(room, started.id);
      expect(done.counts.sent).toBe(10);
      expectEachOnce(emails);
    } finally {
      setEximHook(h.config, 'refuse-sender', false);
      await c.stop();
    }
  });

  it('a sender removed from one of its rooms loses the campaign (404), and the runner cancels it rather than mail in their name', async () => {
    const a = await classOf(3);
    const b = await classOf(3);
    const sender = a.room.instructor;
    await sql(`INSERT INTO memberships (room_id, user_id, role) VALUES ($1, $2, 'instructor')`, [b.room.id, sender.id]);
    const res = await sender.api.post('/api/campaigns', { roomIds: [a.room.id, b.room.id], subject: 'Both rooms', text: 't' });
    expect(res.status).toBe(201);
    const id = res.body.campaign.id as string;
    // Room B's creator removes the sender before any runner sent a mail.
    expect((await b.room.instructor.api.request('DELETE', `/api/rooms/${b.room.id}/members/${sender.id}`)).status).toBe(204);
    expect((await sender.api.get(`/api/campaigns/${id}`)).status).toBe(404);
    expect((await sender.api.post(`/api/campaigns/${id}/resume`, {})).status).toBe(404);
    const c = await runner({});
    try {
      await waitFor(async () => (await b.room.instructor.api.get(`/api/campaigns/${id}`)).status === 404 && (await sql<{ state: string }>('SELECT state FROM campaigns WHERE id = $1', [id]))[0]?.state === 'cancelled', 'the runner to cancel it', 15_000);
      const [row] = await sql<{ pause_reason: string }>('SELECT pause_reason FROM campaigns WHERE id = $1', [id]);
      expect(row?.pause_reason).toMatch(/no longer an instructor of every one of its rooms/);
      expect(delivered([...a.emails, ...b.emails])).toBe(0);
    } finally {
      await c.stop();
    }
  });
});

describe('who gets a campaign mail', () => {
  it('skips members who unsubscribed from the room or whose address is suppressed, and mails the rest with one-click unsubscribe', async () => {
    const { room, emails } = await classOf(4);
    const [a, b, cOff, dSuppressed] = emails as [string, string, string, string];
    const [offUser] = await sql<{ id: string }>('SELECT id FROM users WHERE email = $1', [cOff]);
    await sql(`INSERT INTO notification_prefs (user_id, room_id, mode) VALUES ($1, $2, 'off')`, [offUser!.id, room.id]);
    await sql(`INSERT INTO mail_suppressions (email, reason) VALUES ($1, 'bounced')`, [dSuppressed]);
    const c = await runner({});
    try {
      const started = await start(room, '시험 안내 — exam notice');
      const done = await finished(room, started.id);
      expect(done.counts).toMatchObject({ sent: 2, suppressed: 2 });
      const byAddress = deliveries(emails);
      expect([a, b, cOff, dSuppressed].map((e) => byAddress.get(e)?.length)).toEqual([1, 1, 0, 0]);
      const raw = readFileSync(byAddress.get(a)![0]!, 'utf8');
      expect(mailHeader(raw, 'Subject')).toBe('시험 안내 — exam notice');
      expect(mailHeader(raw, 'List-Unsubscribe')).toMatch(/^<https:\/\/.*\/api\/mail\/unsubscribe\?/);
      expect(mailHeader(raw, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
      expect(mailHeader(raw, 'Precedence')).toBe('bulk');
      const skipped = await room.instructor.api.get(`/api/campaigns/${started.id}/recipients?state=suppressed`);
      expect(skipped.status).toBe(200);
      expect(skipped.body.recipients.map((r: { answer: string }) => r.answer).sort()).toEqual([
        'the address is suppressed (it bounced or complained)',
        'unsubscribed from this room’s mail, or left the room',
      ]);
    } finally {
      await c.stop();
    }
  });
});

describe('the campaign API', () => {
  it('refuses bad input with a code, learners with 403, strangers with 404, and an empty audience with 422 — writing nothing', async () => {
    const { room } = await classOf(2);
    const learner = await makeUser(h, 'learner');
    await learner.api.post('/api/rooms/join', { inviteCode: room.inviteCode });
    const before = await sql<{ n: number }>('SELECT count(*)::int AS n FROM campaigns');
    const api = room.instructor.api;
    for (const body of [{}, { roomIds: [], subject: 's', text: 't' }, { roomIds: [room.id], subject: '', text: 't' }, { roomIds: [room.id], subject: 's', text: 't', extra: 1 }, { roomIds: ['nope'], subject: 's', text: 't' }]) {
      const res = await api.post('/api/campaigns', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
    expect((await learner.api.post('/api/campaigns', { roomIds: [room.id], subject: 's', text: 't' })).body.error.code).toBe('forbidden');
    const stranger = await makeUser(h, 'instructor');
    expect((await stranger.api.post('/api/campaigns', { roomIds: [room.id], subject: 's', text: 't' })).status).toBe(403);
    const empty = await makeRoom(h, 0);
    const none = await empty.instructor.api.post('/api/campaigns', { roomIds: [empty.id], subject: 's', text: 't' });
    expect(none.status).toBe(422);
    expect(none.body.error.code).toBe('no_recipients');
    expect((await sql<{ n: number }>('SELECT count(*)::int AS n FROM campaigns'))[0]?.n).toBe(before[0]?.n);

    for (const body of [{ roomIds: [room.id], subject: 'a\u0007b', text: 't' }, { roomIds: [room.id], subject: 'line\nbreak', text: 't' }, { roomIds: [room.id], subject: 's', text: 'nul\u0000' }]) {
      const res = await api.post('/api/campaigns', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect((await sql<{ n: number }>('SELECT count(*)::int AS n FROM campaigns'))[0]?.n).toBe(before[0]?.n);

    // The same Idempotency-Key twice starts one campaign; the second answer says it is a replay.
    const key = `k-${randomBytes(6).toString('hex')}`;
    const first = await api.post('/api/campaigns', { roomIds: [room.id], subject: 's', text: 't' }, { 'idempotency-key': key });
    const again = await api.post('/api/campaigns', { roomIds: [room.id], subject: 's', text: 't' }, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.campaign.id).toBe(first.body.campaign.id);
    expect((await api.post('/api/campaigns', { roomIds: [room.id], subject: 's', text: 't' }, { 'idempotency-key': 'has space' })).status).toBe(400);
    await api.post(`/api/campaigns/${first.body.campaign.id}/cancel`, {});

    const started = await start(room);
    await api.post(`/api/campaigns/${started.id}/cancel`, {});
    const other = await classOf(1);
    expect((await api.get(`/api/campaigns?roomId=${room.id}`)).body.campaigns.map((c: CampaignBody) => c.id)).toEqual([started.id, first.body.campaign.id]);
    expect((await other.room.instructor.api.get(`/api/campaigns?roomId=${room.id}`)).body.campaigns).toEqual([]);
    expect((await stranger.api.get(`/api/campaigns/${started.id}`)).status).toBe(404);
    expect((await learner.api.get(`/api/campaigns/${started.id}`)).status).toBe(404);
    expect((await api.get('/api/campaigns/not-a-uuid')).status).toBe(404);
    expect((await api.get(`/api/campaigns/${started.id}/recipients?state=lost`)).status).toBe(400);
    expect((await h.api.get('/api/campaigns')).status).toBe(401);
    const listed = await api.get('/api/campaigns');
    expect(listed.body.campaigns.map((c: CampaignBody) => c.id)).toContain(started.id);
  });

  it('shows a campaign over several rooms only to instructors of all of them (its recipients are members of each), and caps a sender at 5 running', async () => {
    const a = await classOf(1);
    const b = await classOf(1);
    const i = a.room.instructor;
    const coTeacher = await makeUser(h, 'instructor');
    const bothTeacher = await makeUser(h, 'instructor');
    await sql(`INSERT INTO memberships (room_id, user_id, role) VALUES ($1, $2, 'instructor'), ($1, $3, 'instructor'), ($1, $4, 'instructor'), ($5, $4, 'instructor')`, [
      b.room.id,
      i.id,
      coTeacher.id,
      bothTeacher.id,
      a.room.id,
    ]);
    // i teaches A and B; coTeacher only B; bothTeacher A and B.
    const res = await i.api.post('/api/campaigns', { roomIds: [a.room.id, b.room.id, a.room.id], subject: 's', text: 't' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const id = res.body.campaign.id as string;
    expect(res.body.campaign).toMatchObject({ roomIds: [a.room.id, b.room.id], recipients: 2 });
    expect((await coTeacher.api.get(`/api/campaigns/${id}`)).status).toBe(404);
    expect((await coTeacher.api.get(`/api/campaigns/${id}/recipients`)).status).toBe(404);
    expect((await coTeacher.api.post(`/api/campaigns/${id}/cancel`, {})).status).toBe(404);
    expect((await coTeacher.api.get('/api/campaigns')).body.campaigns.map((c: CampaignBody) => c.id)).not.toContain(id);
    expect((await bothTeacher.api.get(`/api/campaigns/${id}/recipients`)).body.recipients).toHaveLength(2);
    expect((await bothTeacher.api.get('/api/campaigns')).body.campaigns.map((c: CampaignBody) => c.id)).toContain(id);

    // No runner here: campaigns stay running. Four more make five; the sixth is refused.
    const ids = [id];
    for (let n = 0; n < 4; n++) ids.push((await start(a.room)).id);
    const sixth = await i.api.post('/api/campaigns', { roomIds: [a.room.id], subject: 's', text: 't' });
    expect(sixth.status).toBe(409);
    expect(sixth.body.error.code).toBe('too_many_campaigns');
    await i.api.post(`/api/campaigns/${ids[0]}/cancel`, {});
    expect((await i.api.post('/api/campaigns', { roomIds: [a.room.id], subject: 's', text: 't' })).status).toBe(201);
    for (const c of (await i.api.get('/api/campaigns')).body.campaigns as CampaignBody[]) await i.api.post(`/api/campaigns/${c.id}/cancel`, {});
  });

  it('lets the operators send to every room with the admin token, and refuses without it', async () => {
    const res = await h.api.post('/api/admin/campaigns', { allRooms: true, subject: 's', text: 't' });
    expect(res.status).toBe(401);
    const admin = h.api.withToken(ADMIN_TOKEN);
    expect((await admin.post('/api/admin/campaigns', { allRooms: true, roomIds: [], subject: 's', text: 't' })).status).toBe(400);
    const unknown = await admin.post('/api/admin/campaigns', { roomIds: ['00000000-0000-4000-8000-000000000000'], subject: 's', text: 't' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('room_not_found');
    const { room } = await classOf(3);
    const sent = await admin.post('/api/admin/campaigns', { roomIds: [room.id], subject: 'From the school', text: 'Closed on Monday.' });
    expect(sent.status, JSON.stringify(sent.body)).toBe(201);
    // Every member with an address: the three learners (the instructor has none here).
    expect(sent.body.campaign).toMatchObject({ createdBy: null, recipients: 3 });
    // The room's instructor follows it too.
    expect((await room.instructor.api.get(`/api/campaigns/${sent.body.campaign.id}`)).status).toBe(200);
    expect((await admin.post(`/api/admin/campaigns/${sent.body.campaign.id}/cancel`, {})).body.campaign.state).toBe('cancelled');
  });
});
