/**
 * infra's Exim against a real SMTP client (nodemailer, as the app will send): every mail lands
 * in the development Maildir with its headers as sent, the test-hook recipients get a 451 or a
 * 550 at RCPT, a deferred message waits in the queue until a queue run delivers it, and the
 * daemon stops and starts by its pid file.
 *
 * This file starts an Exim of its own (a fresh data folder, a free port), so stopping it never
 * takes away the test profile's relay that other suites use.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import nodemailer, { type NodemailerError, type SendMailOptions } from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../runtime/config';
import { clearMailbox, eximQueueCount, mailHeader, readMailbox } from '../../testkit/mailbox';
import { freePort } from '../../testkit/ports';
import { testConfig } from '../../testkit/test-config';
import { ensureExim, eximQueueRun, eximStatus, setEximHook, smtpGreets, stopExim } from '../exim';
import { eximPaths, maildirTag } from '../exim-files';
import { servicesStatus, silentLogger } from '../index';

/** A recipient no other test (or earlier run) ever used; `prefix` selects a test hook. */
const uniqueAddress = (prefix = 'learner'): string => `${prefix}-${randomUUID()}@example.org`;

/** Sends one mail over a fresh SMTP connection; resolves with the server's answer to DATA. */
async function send(config: Config, mail: SendMailOptions): Promise<string> {
  const transport = nodemailer.createTransport({ host: config.mail.host, port: config.mail.port, secure: false, ignoreTLS: true });
  try {
    const info = await transport.sendMail({ from: 'roomcast <noreply@roomcast.test>', text: 'hello', ...mail });
    return info.response;
  } finally {
    transport.close();
  }
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const mainlog = (config: Config): string => readFileSync(path.join(eximPaths(config).logDir, 'mainlog'), 'utf8');

/** The SMTP error a send to `to` was refused with. */
async function refusal(config: Config, to: string): Promise<NodemailerError> {
  const err = await send(config, { to, subject: 'refused?' }).then(
    () => null,
    (e: unknown) => e as NodemailerError,
  );
  if (err === null) throw new Error(`${to} was accepted`);
  return err;
}

describe('exim', () => {
  let dataDir: string;
  let config: Config;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'roomcast-exim-'));
    config = testConfig({ ROOMCAST_DATA_DIR: dataDir, ROOMCAST_SMTP_PORT: String(await freePort()) });
    await ensureExim(config, silentLogger);
  });

  afterAll(async () => {
    await stopExim(config, silentLogger);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('is started with the other services by the test set-up, on the test profile port', async () => {
    const shared = testConfig();
    expect(shared.mail.port).not.toBe(loadConfig({}).mail.port);
    const exim = (await servicesStatus(shared)).find((s) => s.name === 'exim');
    expect(exim).toMatchObject({ up: true, endpoint: `127.0.0.1:${shared.mail.port}` });
  });

  it('delivers a mail for any domain into the Maildir, under its recipient, with the headers as sent', async () => {
    const to = uniqueAddress();
    const subject = 'Grüße aus Raum 4 — ✓ 日本語, a subject long enough to be folded over two lines';
    const messageId = `<${randomUUID()}@roomcast.test>`;
    const response = await send(config, {
      to,
      subject,
      messageId,
      text: 'Ünïcode body\n',
      headers: { 'List-Unsubscribe': '<https://rooms.example.org/unsubscribe/abc>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
    });
    expect(response).toMatch(/^250 /);

    await expect.poll(() => readMailbox(config, to).length, { timeout: 10_000 }).toBe(1);
    const [mail] = readMailbox(config, to);
    expect(path.dirname(mail?.file ?? '')).toBe(path.join(eximPaths(config).maildir, 'new'));
    const raw = mail?.raw ?? '';
    // The subject travels as RFC 2047 encoded words (the header block is pure ASCII) and decodes back.
    const subjectLines = /^Subject: (.*(?:\r?\n[ \t].*)*)/m.exec(raw)?.[1] ?? '';
    expect(subjectLines).toMatch(/^=\?UTF-8\?[BQ]\?/);
    expect(raw.slice(0, raw.indexOf("\n\n"))).toMatch(/^[ -~\t\r\n]*$/);
    expect(mailHeader(raw, 'Subject')).toBe(subject);
    expect(mailHeader(raw, 'Message-ID')).toBe(messageId);
    expect(mailHeader(raw, 'To')).toBe(to);
    expect(mailHeader(raw, 'From')).toBe('roomcast <noreply@roomcast.test>');
    expect(mailHeader(raw, 'List-Unsubscribe')).toBe('<https://rooms.example.org/unsubscribe/abc>');
    expect(mailHeader(raw, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
    // What Exim adds for a reader: the envelope recipient and sender.
    expect(mailHeader(raw, 'Envelope-to')).toBe(to);
    expect(mailHeader(raw, 'Return-path')).toBe('<noreply@roomcast.test>');
    expect(raw).toContain('Content-Type: text/plain; charset=utf-8');
    expect(readMailbox(config, uniqueAddress())).toEqual([]);
  });

  it('files a mixed-case or non-ASCII recipient where maildirTag looks for it', async () => {
    const id = randomUUID().slice(0, 8);
    for (const to of [`Mixed.Case+Tag-${id}@Example.ORG`, `jürgen-${id}@example.org`]) {
      await send(config, { to, subject: 'tag' });
      await expect.poll(() => readMailbox(config, to).length, { timeout: 10_000 }).toBe(1);
      expect(readMailbox(config, to)[0]?.file.endsWith(maildirTag(to))).toBe(true);
    }
    expect(maildirTag(`Mixed.Case+Tag-${id}@Example.ORG`)).toBe(`,mixed.case+tag-${id}@example.org`);
    expect(maildirTag(`jürgen-${id}@example.org`)).toBe(`,j__rgen-${id}@example.org`); // ü is two UTF-8 bytes
  });

  it('clears one recipient’s mail and no one else’s', async () => {
    const [a, b] = [uniqueAddress(), uniqueAddress()];
    await send(config, { to: a, subject: 'one' });
    await send(config, { to: a, subject: 'two' });
    await send(config, { to: b, subject: 'three' });
    await expect.poll(() => readMailbox(config, a).length + readMailbox(config, b).length, { timeout: 10_000 }).toBe(3);
    expect(clearMailbox(config, a)).toBe(2);
    expect(readMailbox(config, a)).toEqual([]);
    expect(readMailbox(config, b).map((m) => mailHeader(m.raw, 'Subject'))).toEqual(['three']);
  });

  it('refuses a recipient whose local part starts with "tempfail" with a 451 at RCPT', async () => {
    const to = uniqueAddress('tempfail');
    const err = await refusal(config, to);
    // What the app's retry logic reads: a 4xx on RCPT, not permanent.
    expect(err).toMatchObject({ code: 'EENVELOPE', command: 'RCPT TO', responseCode: 451, permanent: false });
    expect(err.response).toMatch(/^451[ -]4\.3\.0 /);
    expect(readMailbox(config, to)).toEqual([]);
    expect((await refusal(config, uniqueAddress('TempFail'))).responseCode).toBe(451);
  });

  it('refuses a recipient whose local part starts with "reject" or "bounce" with a 550 at RCPT', async () => {
    for (const prefix of ['reject', 'bounce', 'Bounce']) {
      const to = uniqueAddress(prefix);
      const err = await refusal(config, to);
      // What the app's suppression reads: a 5xx on RCPT, permanent.
      expect(err, prefix).toMatchObject({ code: 'EENVELOPE', command: 'RCPT TO', responseCode: 550, permanent: true });
      expect(err.response).toMatch(/^550[ -]5\.1\.1 /);
      expect(readMailbox(config, to)).toEqual([]);
    }
  });

  it('keeps a message it cannot deliver in the queue and delivers it at a later queue run', async () => {
    const { maildir } = eximPaths(config);
    const to = uniqueAddress();
    // A Maildir whose new/ Exim may not write to: the delivery is deferred (EACCES when it moves
    // the message from tmp/ to new/), and the message stays queued.
    const newDir = path.join(maildir, 'new');
    chmodSync(newDir, 0o555);
    try {
      expect(await send(config, { to, subject: 'deferred' })).toMatch(/^250 /);
      // Exim's own record of the failed attempt: "== <address> ... defer (13): Permission denied".
      await expect.poll(() => mainlog(config), { timeout: 10_000 }).toMatch(new RegExp(`== ${escape(to)} .*defer \\(13\\)`));
      expect(await eximQueueCount(config)).toBe(1);
    } finally {
      chmodSync(newDir, 0o755);
    }
    // Queue runs come every 5 s, and the retry rule allows another try 5 s after the first.
    await expect.poll(() => readMailbox(config, to).length, { timeout: 30_000, interval: 500 }).toBe(1);
    expect(mainlog(config)).toMatch(new RegExp(`=> \\S+ <${escape(to)}>`));
    expect(await eximQueueCount(config)).toBe(0);
  });

  it('answers every RCPT with 421 while the slow-down hook is on, and accepts again once it is off', async () => {
    const to = uniqueAddress();
    setEximHook(config, 'slow-down', true);
    try {
      const err = await refusal(config, to);
      // What the campaign load gate reads as "slow down": a 421, after which Exim closes the connection.
      expect(err.responseCode).toBe(421);
      expect(err.response).toMatch(/^421[ -]4\.7\.0 /);
    } finally {
      setEximHook(config, 'slow-down', false);
    }
    expect(await send(config, { to, subject: 'after the slow-down' })).toMatch(/^250 /);
    // Delivered before the next test holds the queue, or it would be held with the rest.
    await expect.poll(() => readMailbox(config, to).length, { timeout: 10_000 }).toBe(1);
  });

  it('holds every accepted message in its queue while the hold hook is on; a queue run delivers them once it is off', async () => {
    const to = uniqueAddress();
    setEximHook(config, 'hold', true);
    try {
      for (let i = 0; i < 3; i++) expect(await send(config, { to, subject: `held ${i}` })).toMatch(/^250 /);
      await expect.poll(() => mainlog(config), { timeout: 10_000 }).toMatch(new RegExp(`== ${escape(to)} .*held: roomcast test hook`));
      expect(await eximQueueCount(config)).toBe(3);
      expect(readMailbox(config, to)).toEqual([]);
    } finally {
      setEximHook(config, 'hold', false);
    }
    await eximQueueRun(config);
    await expect.poll(() => readMailbox(config, to).length, { timeout: 10_000 }).toBe(3);
    expect(await eximQueueCount(config)).toBe(0);
  });

  it('is the MTA the campaigns ask for a queue length by default (ROOMCAST_MAIL_QUEUE_COMMAND unset)', () => {
    expect(config.campaigns.queueCommand).toEqual(['exim4', '-C', eximPaths(config).confFile, '-bpc']);
    expect(loadConfig({ ...process.env, ROOMCAST_SMTP_HOST: 'smtp.school.example' }).campaigns.queueCommand).toBeNull();
    expect(loadConfig({ ...process.env, ROOMCAST_MAIL_QUEUE_COMMAND: 'none' }).campaigns.queueCommand).toBeNull();
    expect(loadConfig({ ...process.env, ROOMCAST_MAIL_QUEUE_COMMAND: 'ssh relay  exim -bpc' }).campaigns.queueCommand).toEqual(['ssh', 'relay', 'exim', '-bpc']);
  });

  it('stops by its pid, removing the pid file, and starts again', async () => {
    const { pidFile } = eximPaths(config);
    const before = await eximStatus(config);
    expect(before.up).toBe(true);
    expect(existsSync(pidFile)).toBe(true);

    await stopExim(config, silentLogger);
    expect(existsSync(pidFile)).toBe(false);
    expect(await eximStatus(config)).toMatchObject({ up: false, pid: null });
    expect(await smtpGreets(config.mail.host, config.mail.port)).toBe(false);

    await ensureExim(config, silentLogger);
    const after = await eximStatus(config);
    expect(after.up).toBe(true);
    expect(after.pid).not.toBe(before.pid);
    const to = uniqueAddress();
    await send(config, { to, subject: 'after the restart' });
    await expect.poll(() => readMailbox(config, to).length, { timeout: 10_000 }).toBe(1);
  });
});
