/**
 * The links account mails carry, and the paths they open: the one place that turns the public
 * URL into them, so the routes and the mails cannot disagree. The paths are relative to `/api`,
 * where the account routes are mounted.
 */
import type { LinkConfig } from '../mail/mail-links';

export const ACCOUNT_PATHS = {
  verifyEmail: '/account/verify-email',
  passwordReset: '/auth/password-reset',
  /** Where the reset page's form posts: not the link itself, so the link's GET and the form's POST stay apart. */
  passwordResetConfirm: '/auth/password-reset/confirm',
} as const;

const link = (c: Pick<LinkConfig, 'publicUrl'>, path: string, token: string): string => `${c.publicUrl}/api${path}?${new URLSearchParams({ token })}`;

export const verifyEmailUrl = (c: Pick<LinkConfig, 'publicUrl'>, token: string): string => link(c, ACCOUNT_PATHS.verifyEmail, token);

export const passwordResetUrl = (c: Pick<LinkConfig, 'publicUrl'>, token: string): string => link(c, ACCOUNT_PATHS.passwordReset, token);
