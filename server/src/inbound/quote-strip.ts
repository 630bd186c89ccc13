/**
 * The new text of a reply: what the person wrote above the mail they answered, without the
 * quoted mail, the client's attribution line, or their signature.
 *
 * Our own module rather than `email-reply-parser` (docs/decisions/0012-inbound-mail.md): it
 * misses Korean Gmail's `…님이 작성:`, the one client our users use most, and its latest release
 * needs Node 22. What is recognised, each with a fixture under server/test/fixtures/inbound/:
 *
 * - attribution lines, also wrapped over up to three lines: Gmail and Thunderbird's
 *   `On <date>, <name> wrote:`, Korean Gmail's `<date> <name>님이 작성:`, Naver's `… 작성:`,
 *   Korean Thunderbird's `<date> <time>에 <name> 이(가) 쓴 글:`;
 * - Outlook's `-----Original Message-----` (`-----원본 메시지-----`), and its header block
 *   (`From:` then `Sent:` or `Date:`, in English or Korean, under a rule of underscores, or of dashes from an HTML `<hr>`, or not);
 * - lines quoted with `>` (dropped wherever they are, so interleaved answers keep only the answers);
 * - a signature after `-- ` (RFC 3676) or `--`, the mobile clients' `Sent from my iPhone`,
 *   `Get Outlook for iOS`, `iPhone에서 보냄`, and a sign-off at the very end: a line that is only
 *   `Best regards,` (`Regards`, `Thanks`, `감사합니다`, …) followed by one short line, the name.
 *   A sign-off without a name line after it is kept: `Thanks!` alone may be the whole answer.
 *
 * HTML-only mail is turned into text first (mailparser does that with html-to-text, which prefixes
 * blockquotes with `>`), so the same rules apply to it.
 *
 * Everything here is linear in the size of the text: the text is cut to MAX_TEXT_CHARS first,
 * no pattern has two adjacent quantifiers over the same characters, and the patterns that look
 * for an attribution or a header line are tried only on lines of at most MAX_MARKER_LINE
 * characters (no client writes a longer one). A hostile mail of one 10 MB line costs one pass.
 */

/** Longer than any room message may be (16 KiB of JSON) by far; what is cut here could never be posted anyway. */
export const MAX_TEXT_CHARS = 4 * 16 * 1024;
/** Attribution and header lines are shorter than this; longer lines are never taken for one. */
const MAX_MARKER_LINE = 200;

/** Attribution lines: the start of the quoted mail. Tested on up to three lines joined. */
const ATTRIBUTION: RegExp[] = [
  /^On\s.+\swrote:\s*$/i,
  // Each starts with the date, so a line of the person's own text above it is never taken along.
  /^\d{4}년\s*\d{1,2}월\s*\d{1,2}일.*님이\s*작성:\s*$/,
  /^\d{4}\.\s*\d{1,2}\.\s*\d{1,2}\..*작성:\s*$/,
  // Korean Thunderbird: `2025. 3. 4. 오후 3:15에 김선생 이(가) 쓴 글:` (also with dashes in the date).
  /^\d{2,4}[.-]\s*\d{1,2}[.-]\s*\d{1,2}\.?\s.*이\(가\)\s*쓴\s*글:\s*$/,
];

const ORIGINAL_MESSAGE = /^\s*-{2,}\s*(Original Message|원본 메시지|Forwarded message|전달된 메시지)\s*-{2,}\s*$/i;
const RULE = /^\s*[-_]{10,}\s*$/;
// `[\s*]*[^\s*]`: one class, then a character outside it, so no two quantifiers compete for the same spaces.
const HEADER_FROM = /^\s*\*?(From|보낸 사람)\s*:[\s*]*[^\s*]/i;
const HEADER_SENT = /^\s*\*?(Sent|Date|보낸 날짜|날짜)\s*:[\s*]*[^\s*]/i;
const SIGNATURE = /^--\s?$/;
const MOBILE_FOOTER = /^\s*(Sent from my \w+|Sent from (Outlook|Mail) for \w+|Get Outlook for \w+|iPhone에서 보냄|Galaxy에서 보냄|삼성 갤럭시에서 보냄)\s*$/i;
const SIGN_OFF = /^\s*(Best regards|Kind regards|Warm regards|Regards|Best wishes|Best|Thanks|Thank you|Many thanks|Cheers|Sincerely|감사합니다|고맙습니다|수고하세요)\s*[,.!]?\s*$/i;
/** A name under a sign-off: up to three words, none starting lower-case or with a digit, no sentence punctuation. */
const NAME_LINE = /^\s*[^\s\p{Ll}\d.!?:;,][^\s.!?:;,]*(\s[^\s\p{Ll}\d.!?:;,][^\s.!?:;,]*){0,2}\s*$/u;
const MAX_NAME_LINE = 40;

const short = (line: string): boolean => line.length <= MAX_MARKER_LINE;
const markerTest = (re: RegExp, line: string): boolean => short(line) && re.test(line);

/** The index of the first line of the quoted mail, or the number of lines when there is none. */
function quoteStart(lines: readonly string[]): number {
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (!short(line)) continue;
    if (ORIGINAL_MESSAGE.test(line)) return i;
    if (RULE.test(line) && lines.slice(i + 1, i + 3).some((l) => markerTest(HEADER_FROM, l))) return i;
    if (HEADER_FROM.test(line) && lines.slice(i + 1, i + 5).some((l) => markerTest(HEADER_SENT, l))) return i;
    // Clients wrap a long attribution line; the line it starts on is where the quote starts.
    for (let n = 1; n <= 3 && i + n <= lines.length; n++) {
      const part = lines.slice(i, i + n).map((l) => l.trim());
      const last = part.at(-1) ?? '';
      if (last === '' || !short(last)) break;
      if (ATTRIBUTION.some((re) => re.test(part.join(' ')))) return i;
    }
  }
  return lines.length;
}

/** Drops a closing `Best regards,` + name pair, when the text ends with exactly that and has text above it. */
function dropSignOff(lines: string[]): string[] {
  const name = lines.at(-1) ?? '';
  const signOff = lines.at(-2) ?? '';
  if (lines.length < 3 || name.length > MAX_NAME_LINE || !NAME_LINE.test(name) || !markerTest(SIGN_OFF, signOff)) return lines;
  const above = lines.slice(0, -2);
  return above.some((l) => l.trim() !== '') ? above : lines;
}

const trimTrailing = (lines: string[]): void => {
  while (lines.length > 0 && (lines.at(-1)?.trim() === '' || markerTest(MOBILE_FOOTER, lines.at(-1) ?? ''))) lines.pop();
};

/** The new text of a reply, trimmed; empty when there is none. */
export function stripQuotes(text: string): string {
  let lines = text.slice(0, MAX_TEXT_CHARS).replace(/\r\n?/g, '\n').split('\n');
  lines = lines.slice(0, quoteStart(lines));
  const signature = lines.findIndex((l) => SIGNATURE.test(l));
  if (signature !== -1) lines = lines.slice(0, signature);
  lines = lines.filter((l) => !/^\s*>/.test(l));
  trimTrailing(lines);
  lines = dropSignOff(lines);
  trimTrailing(lines);
  return lines
    .map((l) => l.trimEnd())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
