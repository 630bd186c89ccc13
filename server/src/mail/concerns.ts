/**
 * Which messages concern a person enough to mail them: the one rule used by immediate
 * notifications, digests and reminders alike. Always a subset of what resync lets them see
 * (docs/security.md), so no mail carries an instructors-only question to a learner or someone
 * else's private message.
 *
 * - A learner hears of announcements, and of what an instructor wrote to them alone.
 * - An instructor hears of questions in their rooms, whoever they were addressed to.
 * - Nobody hears of their own messages.
 */
import type { Audience, MessageKind, Role } from '../../../shared/protocol/messages';
import type { MailItem } from './mail-job';

export interface MailableMessage {
  id: string;
  roomId: string;
  roomName: string;
  seq: number;
  kind: MessageKind;
  audience: Audience;
  senderId: string;
  senderName: string;
  /** The sender's role in the room when the mail is made; null if they have left it. */
  senderRole: Role | null;
  recipientId: string | null;
  body: Record<string, unknown>;
  createdAt: Date;
}

export interface Reader {
  id: string;
  role: Role;
}

export function concerns(m: MailableMessage, reader: Reader): boolean {
  if (m.senderId === reader.id) return false;
  if (reader.role === 'instructor') return m.kind === 'question';
  if (m.kind === 'announcement' && m.audience === 'everyone') return true;
  return m.audience === 'member' && m.recipientId === reader.id && m.senderRole === 'instructor';
}

/** Longest message text a mail quotes; the rest is in the room. */
const MAX_TEXT = 2000;

/** A message as a mail shows it. */
export function mailItem(m: MailableMessage): MailItem {
  const text = typeof m.body.text === 'string' ? m.body.text : JSON.stringify(m.body);
  return {
    kind: m.kind,
    senderName: m.senderName,
    text: text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text,
    createdAt: m.createdAt.toISOString(),
    urgent: isUrgent(m),
  };
}

/** An announcement its instructor marked urgent goes at once, whatever digest the reader chose. */
export const isUrgent = (m: Pick<MailableMessage, 'kind' | 'body'>): boolean => m.kind === 'announcement' && m.body.urgent === true;
