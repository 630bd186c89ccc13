/**
 * Where a reply by mail to a notification goes: decided when the notification is made, kept in
 * the reply address's row (inbound-addresses.ts), never read from the reply itself.
 *
 * - An instructor answering a question answers it (`answer`): to everyone when the question was
 *   asked in front of everyone, else privately to the one who asked.
 * - A learner answering an instructor's private message answers privately, in that thread.
 * - A learner answering an announcement writes in the room (`chat`, to everyone), as the page's
 *   reply box would.
 */
import type { Role } from '../../../shared/protocol/messages';
import type { MailableMessage } from './concerns';
import type { ReplyTarget } from './inbound-addresses';

export function replyTarget(m: Pick<MailableMessage, 'audience' | 'senderId'>, reader: { role: Role }): ReplyTarget {
  const kind = reader.role === 'instructor' ? 'answer' : 'chat';
  return m.audience === 'everyone' ? { audience: 'everyone', recipientId: null, kind } : { audience: 'member', recipientId: m.senderId, kind };
}
