/**
 * Mail commands: the Subject of a mail to a cmd+ address, as the seed's Exim filter read the
 * Subject. Each command word maps to a parser in one table (English and Korean words); anything
 * else, an empty subject included, is answered with the list of commands.
 */
import type { NotifyMode } from '../mail/mail-store';

export type MailCommand = { name: 'history'; count: number } | { name: 'mode'; mode: NotifyMode } | { name: 'help' };

/** History answers this many messages unless the command asks for another number, up to MAX_HISTORY. */
export const DEFAULT_HISTORY = 20;
export const MAX_HISTORY = 50;

const history = (args: string[]): MailCommand | null => {
  if (args.length === 0) return { name: 'history', count: DEFAULT_HISTORY };
  const n = /^\d{1,4}$/.test(args[0] ?? '') ? Number(args[0]) : NaN;
  return args.length === 1 && n >= 1 ? { name: 'history', count: Math.min(n, MAX_HISTORY) } : null;
};
const mode = (m: NotifyMode) => (args: string[]): MailCommand | null => (args.length === 0 ? { name: 'mode', mode: m } : null);
const digest = (args: string[]): MailCommand | null => {
  const window = { daily: 'daily', hourly: 'hourly', 매일: 'daily', 매시간: 'hourly' }[args[0] ?? 'daily'];
  return args.length <= 1 && window !== undefined ? { name: 'mode', mode: window as NotifyMode } : null;
};

/** Command word → parser of its arguments (null: the arguments are wrong, so help is answered). */
const COMMANDS: Record<string, (args: string[]) => MailCommand | null> = {
  history,
  기록: history,
  mute: mode('off'),
  알림끄기: mode('off'),
  unmute: mode('immediate'),
  알림켜기: mode('immediate'),
  digest,
  요약: digest,
  help: () => ({ name: 'help' }),
  도움말: () => ({ name: 'help' }),
};

/** Reply and forward prefixes mail clients put before a subject, in English and Korean. */
const PREFIX = /^\s*(re|fw|fwd|aw|답장|회신|전달)\s*(\[\d+\])?\s*:\s*/i;

/** The command a Subject asks for. */
export function parseCommand(subject: string): MailCommand {
  let s = subject.normalize('NFC');
  while (PREFIX.test(s)) s = s.replace(PREFIX, '');
  const [word = '', ...args] = s.trim().toLowerCase().split(/\s+/);
  const parse = Object.hasOwn(COMMANDS, word) ? COMMANDS[word] : undefined;
  return parse?.(args) ?? { name: 'help' };
}
