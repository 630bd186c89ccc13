/**
 * What a queued mail is: a job on the 'mail' queue (docs/leased-work.md) whose payload names the
 * recipient, the template and the template's variables. The mail is rendered when it is sent,
 * so an edited template applies to mail already queued. Its Message-ID comes from the job's ref,
 * so a resend after a crash carries the same one and can be recognised.
 */
import { createHash } from 'node:crypto';

export const MAIL_QUEUE = 'mail';

export const MAIL_TYPES = ['notification', 'digest', 'reminder', 'password_reset', 'verify_email', 'webhook_disabled', 'command_reply', 'announcement'] as const;
export type MailType = (typeof MAIL_TYPES)[number];

/** One message as a mail shows it. */
export interface MailItem {
  kind: string;
  senderName: string;
  text: string;
  /** ISO 8601. */
  createdAt: string;
  urgent: boolean;
}

export interface RoomRef {
  name: string;
  /** Where the room opens in the browser. */
  url: string;
}

/** The variables each template gets. */
export interface MailVars {
  /**
   * `commandAddress`: where the recipient mails commands about the room (docs/inbound-mail.md);
   * `replyAudience`: who sees a reply to the mail, everyone in the room, or (`private`) the
   * message's sender and the room's instructors.
   */
  notification: { recipient: { name: string }; room: RoomRef; message: MailItem; unsubscribeUrl: string; commandAddress: string; replyAudience: 'everyone' | 'private' };
  digest: { recipient: { name: string }; room: RoomRef; window: 'hourly' | 'daily'; items: MailItem[]; count: number; unsubscribeUrl: string };
  reminder: { recipient: { name: string }; room: RoomRef; missed: number; items: MailItem[]; unsubscribeUrl: string };
  password_reset: { recipient: { name: string }; resetUrl: string; expiresMinutes: number };
  verify_email: { recipient: { name: string }; verifyUrl: string; expiresHours: number };
  /** roomcast turned a webhook endpoint off: it answered 410 (`gone`), or every attempt failed for days (`failing`). */
  webhook_disabled: {
    recipient: { name: string };
    room: RoomRef;
    endpoint: { url: string; description: string };
    reason: 'gone' | 'failing';
    /** ISO 8601: the first failed attempt since the last success. */
    failingSince: string;
    /** The last attempt's error, e.g. "HTTP 503 Service Unavailable"; may be empty. */
    lastError: string;
  };
  /** A bulk announcement (docs/campaigns.md): the campaign's subject and text, written by its sender. */
  announcement: {
    recipient: { name: string };
    room: RoomRef;
    /** The instructor who sent it, or the school's name for one the operators sent. */
    sender: { name: string };
    announcement: { subject: string; text: string };
    unsubscribeUrl: string;
  };
  /** The answer to a mail command (docs/inbound-mail.md): `outcome` says which part applies. */
  command_reply: {
    recipient: { name: string };
    room: RoomRef;
    /** The Subject the command came in, as written. */
    asked: string;
    /** history: `items`, the newest messages the recipient may see, oldest first; mode: `mode` is the mail choice now; help: what the commands are. */
    outcome: 'history' | 'mode' | 'help';
    items: MailItem[];
    mode: string;
    commandAddress: string;
  };
}

export type MailJob = {
  [T in MailType]: {
    to: string;
    type: T;
    vars: MailVars[T];
    /** The one-click unsubscribe URL (RFC 8058) for notifications; account mail has none. */
    unsubscribeUrl?: string;
    /** Reply-To: where a reply goes (a notification's reply+ address). */
    replyTo?: string;
    /** The Message-ID this mail answers (In-Reply-To and References): a command's answer. */
    inReplyTo?: string;
    /**
     * RFC 3834's Auto-Submitted: every mail roomcast makes is `auto-generated`, an answer to a mail
     * `auto-replied`; responders that honour it never answer either, so no loop starts.
     */
    autoSubmitted?: 'auto-replied';
  };
}[MailType];

/** The Message-ID of the mail a job sends: the same for every attempt of that job. */
export function messageIdFor(ref: string, domain: string): string {
  return `<${createHash('sha256').update(ref).digest('hex').slice(0, 32)}@${domain}>`;
}
