/**
 * The links mails carry. Unsubscribe links are signed (HMAC-SHA256 with `linkSecret`) rather
 * than stored: a one-click POST from a mail client must work without a login and without a
 * lookup table, and a forged or altered link is refused.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface LinkConfig {
  /** An https origin. */
  publicUrl: string;
  linkSecret: string;
}

const sign = (secret: string, what: string): string => createHmac('sha256', secret).update(what).digest('base64url');

export function unsubscribeUrl(c: LinkConfig, userId: string, roomId: string): string {
  const q = new URLSearchParams({ u: userId, r: roomId, t: sign(c.linkSecret, `unsubscribe:${userId}:${roomId}`) });
  return `${c.publicUrl}/api/mail/unsubscribe?${q}`;
}

/** Whether `token` is the signature of an unsubscribe link for this user and room. */
export function validUnsubscribe(c: LinkConfig, userId: string, roomId: string, token: string): boolean {
  const want = Buffer.from(sign(c.linkSecret, `unsubscribe:${userId}:${roomId}`));
  const got = Buffer.from(token);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Where a room opens in the browser: the learner page for learners, the console for instructors. */
export function roomUrl(c: LinkConfig, roomId: string, role: 'instructor' | 'learner'): string {
  return `${c.publicUrl}/${role === 'instructor' ? 'instructor.html' : 'index.html'}?room=${encodeURIComponent(roomId)}`;
}
