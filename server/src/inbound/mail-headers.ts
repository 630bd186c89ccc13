/**
 * The header block of a received mail, read without parsing its body: every check that decides
 * whether a mail is worth parsing (its token, its From, whether a robot sent it) reads only this,
 * so an unknown sender's 10 MB mail costs one scan for the blank line, never a MIME parse.
 */

export interface HeaderField {
  /** Lower case. */
  name: string;
  /** Unfolded and trimmed, as received (RFC 2047 words are not decoded). */
  value: string;
}

/** A Message-ID as RFC 5322 shapes it (`<left@right>`); anything else counts as none. */
const MESSAGE_ID = /^<[^\s<>]+@[^\s<>]+>$/;

/** A mail's header block and body: split at the first empty line (no body when there is none). */
export function splitMail(raw: Buffer): { header: Buffer; body: Buffer } {
  const ends = [raw.indexOf('\r\n\r\n'), raw.indexOf('\n\n')].filter((i) => i !== -1);
  const end = ends.length === 0 ? raw.length : Math.min(...ends);
  return { header: raw.subarray(0, end), body: raw.subarray(end) };
}

export class MailHeaders {
  private constructor(readonly fields: readonly HeaderField[]) {}

  /** The fields of the header block: everything before the first empty line (all of it when there is none). */
  static read(raw: Buffer): MailHeaders {
    const block = splitMail(raw).header.toString('utf8');
    const fields: HeaderField[] = [];
    for (const line of block.replace(/\r?\n(?=[ \t])/g, '').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      // A line without a name (or a name with spaces) is no field: ignored, as mailparser does.
      if (colon < 1 || /[\s]/.test(line.slice(0, colon))) continue;
      fields.push({ name: line.slice(0, colon).toLowerCase(), value: line.slice(colon + 1).trim() });
    }
    return new MailHeaders(fields);
  }

  /** Every value of the field, in order. */
  all(name: string): string[] {
    return this.fields.filter((f) => f.name === name).map((f) => f.value);
  }

  /** The first value of the field. */
  first(name: string): string | undefined {
    return this.fields.find((f) => f.name === name)?.value;
  }

  count(name: string): number {
    return this.all(name).length;
  }

  /**
   * The Message-ID when there is exactly one and it has the shape of one. Without it a mail is
   * keyed by its content (inbound-processor.ts, `mailKey`) and a command answer has no In-Reply-To.
   */
  messageId(): string | null {
    const ids = this.all('message-id');
    return ids.length === 1 && MESSAGE_ID.test(ids[0] ?? '') ? (ids[0] as string) : null;
  }
}
