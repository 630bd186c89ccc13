/**
 * What the tests read of the mail roomcast sends: infra's Exim delivers every message into one
 * Maildir under the data folder, each file named with its recipient (`maildirTag`), so a test
 * that mails its own unique address finds exactly its own messages.
 *
 * To make the relay itself answer with an error, mail a recipient whose local part starts with
 * `tempfail` (451 at RCPT), `flaky` (451 the first time only) or `reject` / `bounce` (550 at
 * RCPT); see infra/exim-files.ts.
 */
import { readFileSync, rmSync } from 'node:fs';
import { maildirFiles, maildirTag } from '../infra/index';
import type { Config } from '../runtime/config';

export { eximQueueCount, mailHeader } from '../infra/index';

/** One delivered copy: its file and its raw RFC 822 text (headers Exim added first). */
export interface DeliveredMail {
  file: string;
  raw: string;
}

/** Every message delivered to `address` so far, newest first. */
export function readMailbox(config: Config, address: string): DeliveredMail[] {
  const mails: DeliveredMail[] = [];
  for (const { file } of maildirFiles(config, address)) {
    try {
      mails.push({ file, raw: readFileSync(file, 'utf8') });
    } catch (err) {
      // Removed between the listing and the read (a clearMailbox elsewhere): no longer there.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return mails;
}

/** Deletes every message delivered to `address`; returns how many there were. */
export function clearMailbox(config: Config, address: string): number {
  const files = maildirFiles(config, address);
  for (const { file } of files) rmSync(file, { force: true });
  return files.length;
}

/** The files delivered to each of many addresses, from one listing of the Maildir (not one per address). */
export function deliveriesByAddress(config: Config, addresses: readonly string[]): Map<string, string[]> {
  const byTag = new Map(addresses.map((a) => [maildirTag(a), a]));
  const found = new Map<string, string[]>(addresses.map((a) => [a, []]));
  for (const { file } of maildirFiles(config)) {
    const base = file.replace(/:2,[A-Za-z]*$/, '');
    const address = byTag.get(base.slice(base.lastIndexOf(',')));
    if (address !== undefined) found.get(address)?.push(file);
  }
  return found;
}
