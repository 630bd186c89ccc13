/**
 * What the log says about a poll, a question or a hand, read inside the send transaction that
 * holds the room's lock (`MessageStore.insertBuilt`), so nothing can change between the check
 * and the message it allows. Every read is of `action` and `question` messages of one room,
 * through the index of migration 014.
 */
import type { Audience } from '../../../shared/protocol/messages';
import type { PoolClient } from '../db/pool';

export interface PollFacts {
  choices: number;
  multiple: boolean;
  allowChange: boolean;
  closesAt: Date | null;
  closed: boolean;
  /** The right choices, from the quiz's `poll.key`; null for a poll without them. */
  correct: number[] | null;
}

const ACTION = `kind = 'action' AND room_id = $1`;

export class InteractionFacts {
  constructor(
    private readonly tx: PoolClient,
    private readonly roomId: string,
  ) {}

  /**
   * The poll as the log says now, and whether `answeredBy` has answered it: one round trip, a
   * prepared statement (planned once per connection), as it runs under the room's lock for
   * every answer of a class answering at once.
   */
  async poll(pollId: string, answeredBy?: string): Promise<(PollFacts & { answered: boolean }) | null> {
    const { rows } = await this.tx.query<{ open: Record<string, unknown> | null; closed: boolean; correct: number[] | null; answered: boolean }>({
      name: 'interaction-poll-facts',
      text: `SELECT (SELECT body FROM messages WHERE ${ACTION} AND body->>'type' = 'poll.open' AND body->>'pollId' = $2 LIMIT 1) AS open,
                    EXISTS (SELECT 1 FROM messages WHERE ${ACTION} AND body->>'type' = 'poll.close' AND body->>'pollId' = $2) AS closed,
                    (SELECT body->'correct' FROM messages WHERE ${ACTION} AND body->>'type' = 'poll.key' AND body->>'pollId' = $2 LIMIT 1) AS correct,
                    ($3::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM messages WHERE ${ACTION} AND sender_id = $3::uuid AND body->>'type' = 'poll.answer' AND body->>'pollId' = $2)) AS answered`,
      values: [this.roomId, pollId, answeredBy ?? null],
    });
    const r = rows[0];
    const open = r?.open;
    if (!r || !open) return null;
    return {
      choices: (open.choices as unknown[]).length,
      multiple: open.multiple === true,
      allowChange: open.allowChange === true,
      closesAt: typeof open.closesAt === 'string' ? new Date(open.closesAt) : null,
      closed: r.closed,
      correct: r.correct,
      answered: r.answered,
    };
  }

  /** Each learner's latest answer, counted per choice: exactly the answers stored so far. */
  async tally(pollId: string, choices: number): Promise<{ tally: number[]; answered: number }> {
    const { rows } = await this.tx.query<{ choices: number[] }>(
      `SELECT DISTINCT ON (sender_id) body->'choices' AS choices FROM messages
        WHERE ${ACTION} AND body->>'type' = 'poll.answer' AND body->>'pollId' = $2 ORDER BY sender_id, seq DESC`,
      [this.roomId, pollId],
    );
    const tally = Array.from({ length: choices }, () => 0);
    for (const r of rows) for (const c of r.choices) if (c >= 0 && c < choices) tally[c] = (tally[c] ?? 0) + 1;
    return { tally, answered: rows.length };
  }

  /** The question (a `question` message of this room): who may see it now, and its text. */
  async question(questionId: string): Promise<{ audience: Audience; public: boolean; text: string } | null> {
    const { rows } = await this.tx.query<{ audience: Audience; body: Record<string, unknown> }>(`SELECT audience, body FROM messages WHERE room_id = $1 AND id = $2 AND kind = 'question'`, [
      this.roomId,
      questionId,
    ]);
    const q = rows[0];
    if (!q) return null;
    const { rows: marks } = await this.tx.query<{ on: boolean }>(
      `SELECT (body->>'on')::boolean AS on FROM messages WHERE ${ACTION} AND body->>'type' = 'board.mark' AND body->>'questionId' = $2 AND body->>'status' = 'public' ORDER BY seq DESC LIMIT 1`,
      [this.roomId, questionId],
    );
    return { audience: q.audience, public: q.audience === 'everyone' || marks[0]?.on === true, text: typeof q.body.text === 'string' ? q.body.text : '' };
  }

  async hasUpvoted(questionId: string, userId: string): Promise<boolean> {
    const { rows } = await this.tx.query(`SELECT 1 FROM messages WHERE ${ACTION} AND body->>'type' = 'board.upvote' AND body->>'questionId' = $2 AND sender_id = $3 LIMIT 1`, [
      this.roomId,
      questionId,
      userId,
    ]);
    return rows.length > 0;
  }

  /** Whether the member's hand is up: their last raise is later than their last lower. */
  async handUp(userId: string): Promise<boolean> {
    const { rows } = await this.tx.query<{ type: string }>(
      `SELECT body->>'type' AS type FROM messages WHERE ${ACTION} AND body->>'type' IN ('hand.raise', 'hand.lower') AND body->>'userId' = $2 ORDER BY seq DESC LIMIT 1`,
      [this.roomId, userId],
    );
    return rows[0]?.type === 'hand.raise';
  }
}
