/**
 * The new text of a reply: what the person wrote above the mail they answered, without the
 * quoted mail, the client's attribution line, or their signature.
 *
 * Our own module rather than `email-reply-parser` (docs/decisions/0012-inbound-mail.md): it
 * misses Korean Gmail's `…님이 작성:`, the one client our users use most, and its latest release
 * needs Node 22. What is recognised, each with a fixture under server/test/fixtures/inbound/:
 *
 * - attribution lines, also wrapped over up to three lines: Gmail and Thunderbird's
 *   `On <date>, <name> wrote:`, Korean Gmail's `<date> <name>님이 작성:`, Naver's `… 작성:`;
 * - Outlook's `-----Original Message-----` (`-----원본 메시지-----`), and its header block
 *   (`From:` then `Sent:` or `Date:`, in English or Korean, under a rule of underscores, or of dashes from an HTML `<hr>`, or not);
 * - lines quoted with `>` (dropped wherever they are, so interleaved answers keep only the answers);
 * - a signature after `-- ` (RFC 3676) or `--`, and the mobile clients' `Sent from my iPhone`,
 *   `Get Outlook for iOS`, `iPhone에서 보냄`.
 *
 * HTML-only mail is turned into text first (mailparser does that with html-to-text, which prefixes
 * blockquotes with `>`), so the same rules apply to it.
 */

/** Attribution lines: the start of the quoted mail. Tested on up to three lines joined. */
const ATTRIBUTION: RegExp[] = [
  /^On\s.+\swrote:\s*$/i,
  // Each starts with the date, so a line of the person's own text above it is never taken along.
  /^\d{4}년\s*\d{1,2}월\s*\d{1,2}일.*님이\s*작성:\s*$/,
  /^\d{4}\.\s*\d{1,2}\.\s*\d{1,2}\..*작성:\s*$/,
];

const ORIGINAL_MESSAGE = /^\s*-{2,}\s*(Original Message|원본 메시지|Forwarded message|전달된 메시지)\s*-{2,}\s*$/i;
const RULE = /^\s*[-_]{10,}\s*$/;
const HEADER_FROM = /^\s*\*?(From|보낸 사람)\s*:\s*\*?\s*\S/i;
const HEADER_SENT = /^\s*\*?(Sent|Date|보낸 날짜|날짜)\s*:\s*\*?\s*\S/i;
const SIGNATURE = /^--\s?$/;
const MOBILE_FOOTER = /^\s*(Sent from my \w+|Sent from (Outlook|Mail) for \w+|Get Outlook for \w+|iPhone에서 보냄|Galaxy에서 보냄|삼성 갤럭시에서 보냄)\s*$/i;

/** The index of the first line of the quoted mail, or the number of lines when there is none. */
function quoteStart(lines: readonly string[]): number {
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (ORIGINAL_MESSAGE.test(line)) return i;
    if (RULE.test(line) && lines.slice(i + 1, i + 3).some((l) => HEADER_FROM.test(l))) return i;
    if (HEADER_FROM.test(line) && lines.slice(i + 1, i + 5).some((l) => HEADER_SENT.test(l))) return i;
    // Clients wrap a long attribution line; the line it starts on is where the quote starts.
    for (let n = 1; n <= 3 && i + n <= lines.length; n++) {
      const part = lines.slice(i, i + n).map((l) => l.trim());
      if (part.at(-1) === '') break;
      if (ATTRIBUTION.some((re) => re.test(part.join(' ')))) return i;
    }
  }
  return lines.length;
}

/** The new text of a reply, trimmed; empty when there is none. */
export function stripQuotes(text: string): string {
  let lines = text.replace(/\r\n?/g, '\n').split('\n');
  lines = lines.slice(0, quoteStart(lines));
  const signature = lines.findIndex((l) => SIGNATURE.test(l));
  if (signature !== -1) lines = lines.slice(0, signature);
  lines = lines.filter((l) => !/^\s*>/.test(l));
  while (lines.length > 0 && (lines.at(-1)?.trim() === '' || MOBILE_FOOTER.test(lines.at(-1) ?? ''))) lines.pop();
  return lines
    .map((l) => l.trimEnd())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
