/**
 * The addresses roomcast receives mail at (migration 011, `inbound_addresses`), and the only SQL
 * on that table:
 *
 * - `reply+<token>@<domain>`: the Reply-To of a notification; a reply posts into the room as the
 *   token's user, to the audience and recipient the row names (a private thread stays private);
 * - `cmd+<token>@<domain>`: mail commands of one user in one room;
 * - `bounces+<token>@<domain>`: the return path (envelope sender) of every mail to one address,
 *   so a delivery status notification says which address bounced without our trusting its body.
 *
 * A token is 160 bits: the HMAC of its row's random id under the link secret, in lower-case
 * base32 (mail software may fold the case of a local part). The row keeps only the token's
 * SHA-256, so a database dump hands out no working address; deriving the token from the id lets
 * the next mail to the same person and room reuse the row without storing the token. Rows expire
 * (each reuse extends them, but only for ROOMCAST_INBOUND_ADDRESS_ROTATE_DAYS after the row was
 * made: then new mails carry a new address, so none lives longer than rotation + TTL however much
 * it is used) and can be revoked. A reply or command address made before its user's current
 * membership of the room began (they left, or were removed, and came back) counts as revoked, so
 * leaving a room ends every address about it without a hook in the room service. Rows that
 * stopped working PRUNE_AFTER_DAYS ago are deleted a few at a time whenever a new one is made.
 * An address never carries a credential, and knowing one lets nobody in: the From of the mail
 * must be the user's verified address too.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';
import type { Config } from '../../../runtime/config';
import type { Audience, MessageKind } from '../../../shared/protocol/messages';
import type { Pool, PoolClient } from '../db/pool';

export const INBOUND_PURPOSES = ['reply', 'command', 'bounce'] as const;
export type InboundPurpose = (typeof INBOUND_PURPOSES)[number];

/** The local part's prefix of each purpose; infra/exim-files.ts routes exactly these. */
const PREFIX: Record<InboundPurpose, string> = { reply: 'reply', command: 'cmd', bounce: 'bounces' };
const PURPOSE_OF = new Map(INBOUND_PURPOSES.map((p) => [PREFIX[p], p]));

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const TOKEN_SHAPE = /^[a-z2-7]{32}$/;

/** 20 bytes as 32 lower-case base32 characters. */
function base32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/** Hex SHA-256: of a token, the row's key; inbound/ keys mails with it too. */
export const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

/** What a reply to a notification posts: the thread it answers. */
export interface ReplyTarget {
  audience: Audience;
  /** The member a private reply goes to; null unless `audience` is `member`. */
  recipientId: string | null;
  kind: MessageKind;
}

export type InboundGrant =
  | { purpose: 'reply'; id: string; userId: string; roomId: string; target: ReplyTarget }
  | { purpose: 'command'; id: string; userId: string; roomId: string }
  | { purpose: 'bounce'; id: string; email: string };

/** Why an address of the right shape grants nothing. */
export type AddressRefusal = 'unknown' | 'expired' | 'revoked';

/** The purpose and token of `address` when it is one of ours on `domain`; null otherwise. */
export function parseInboundAddress(address: string, domain: string): { purpose: InboundPurpose; token: string } | null {
  const at = address.lastIndexOf('@');
  if (at < 1 || address.slice(at + 1).toLowerCase() !== domain) return null;
  const m = /^([a-z]+)\+([a-z2-7]{32})$/.exec(address.slice(0, at).toLowerCase());
  const purpose = m?.[1] === undefined ? undefined : PURPOSE_OF.get(m[1]);
  return purpose === undefined || m?.[2] === undefined ? null : { purpose, token: m[2] };
}

interface Row {
  id: string;
  purpose: InboundPurpose;
  user_id: string | null;
  room_id: string | null;
  post_audience: Audience | null;
  post_recipient: string | null;
  post_kind: MessageKind | null;
  email: string | null;
  expired: boolean;
  revoked: boolean;
}

type Db = Pick<Pool | PoolClient, 'query'>;

/** Expired and revoked rows are kept this long, so a late mail to one is logged as `expired` or `revoked`, not `unknown`. */
const PRUNE_AFTER_DAYS = 30;
/** Rows deleted per new row: enough to keep up with the rows made, never a long statement. */
const PRUNE_BATCH = 100;

/**
 * SQL: whether the reply or command row `a` was made since its user last joined the room;
 * `whenNotMember` when they are not a member now.
 */
const madeSinceJoining = (whenNotMember: boolean): string =>
  `coalesce(a.created_at >= (SELECT m.joined_at FROM memberships m WHERE m.room_id = a.room_id AND m.user_id = a.user_id), ${whenNotMember})`;

export class InboundAddresses {
  constructor(
    private readonly pool: Pool,
    private readonly o: { domain: string; secret: string; ttlMs: number; rotateMs: number },
  ) {}

  /** As configured: the inbound domain, the link secret, the address lifetime and rotation. */
  static fromConfig(pool: Pool, config: Config): InboundAddresses {
    return new InboundAddresses(pool, { domain: config.inbound.domain, secret: config.linkSecret, ttlMs: config.inbound.addressTtlMs, rotateMs: config.inbound.addressRotateMs });
  }

  private token(id: string): string {
    return base32(createHmac('sha256', this.o.secret).update(`inbound-address:${id}`).digest().subarray(0, 20));
  }

  private address(purpose: InboundPurpose, id: string): string {
    return `${PREFIX[purpose]}+${this.token(id)}@${this.o.domain}`;
  }

  /**
   * The live row matching `match` (on `a`, with its values from $4) gets a fresh expiry and is
   * reused, if it is younger than the rotation; without one, a new row. Two callers at once may
   * each make one: both addresses work, so no lock is worth it.
   */
  private async issue(db: Db, purpose: InboundPurpose, match: string, values: unknown[], insert: Record<string, unknown>): Promise<string> {
    const ttl = this.o.ttlMs / 1000;
    const reused = await db.query<{ id: string }>(
      `UPDATE inbound_addresses SET expires_at = now() + make_interval(secs => $1)
        WHERE id = (SELECT id FROM inbound_addresses a
                     WHERE purpose = $2 AND revoked_at IS NULL AND expires_at > now()
                       AND created_at > now() - make_interval(secs => $3) AND ${match}
                     ORDER BY created_at DESC LIMIT 1)
        RETURNING id`,
      [ttl, purpose, this.o.rotateMs / 1000, ...values],
    );
    const found = reused.rows[0]?.id;
    if (found !== undefined) return this.address(purpose, found);
    const id = randomUUID();
    const columns = Object.keys(insert);
    await db.query(
      `INSERT INTO inbound_addresses (id, purpose, token_hash, expires_at, ${columns.join(', ')})
       VALUES ($1, $2, $3, now() + make_interval(secs => $4), ${columns.map((_c, i) => `$${i + 5}`).join(', ')})`,
      [id, purpose, sha256(this.token(id)), ttl, ...Object.values(insert)],
    );
    // SKIP LOCKED: two transactions pruning at once take different rows instead of waiting on each other.
    await db.query(
      `DELETE FROM inbound_addresses WHERE id IN (
         SELECT id FROM inbound_addresses WHERE LEAST(expires_at, revoked_at) < now() - make_interval(days => $1)
          LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [PRUNE_AFTER_DAYS, PRUNE_BATCH],
    );
    return this.address(purpose, id);
  }

  /** The Reply-To of a notification to `userId` about `roomId`; inside the transaction that queues the mail. */
  replyAddress(db: Db, userId: string, roomId: string, target: ReplyTarget): Promise<string> {
    return this.issue(
      db,
      'reply',
      `user_id = $4 AND room_id = $5 AND post_audience = $6 AND post_recipient IS NOT DISTINCT FROM $7::uuid AND post_kind = $8 AND ${madeSinceJoining(false)}`,
      [userId, roomId, target.audience, target.recipientId, target.kind],
      { user_id: userId, room_id: roomId, post_audience: target.audience, post_recipient: target.recipientId, post_kind: target.kind },
    );
  }

  /** Where `userId` mails commands about `roomId`. */
  commandAddress(db: Db, userId: string, roomId: string): Promise<string> {
    return this.issue(db, 'command', `user_id = $4 AND room_id = $5 AND ${madeSinceJoining(false)}`, [userId, roomId], { user_id: userId, room_id: roomId });
  }

  /** The return path of mail to `email`: where its delivery status notifications come back. */
  bounceAddress(email: string): Promise<string> {
    const e = email.toLowerCase();
    return this.issue(this.pool, 'bounce', 'email = $4', [e], { email: e });
  }

  /** What the address stands for, or why it stands for nothing. */
  async resolve(purpose: InboundPurpose, token: string): Promise<InboundGrant | AddressRefusal> {
    if (!TOKEN_SHAPE.test(token)) return 'unknown';
    // A bounce row has no room; for a reply or command row of a member who left, the processor says not_a_member.
    const { rows } = await this.pool.query<Row>(
      `SELECT id, purpose, user_id, room_id, post_audience, post_recipient, post_kind, email,
              expires_at <= now() AS expired,
              revoked_at IS NOT NULL OR (room_id IS NOT NULL AND NOT ${madeSinceJoining(true)}) AS revoked
         FROM inbound_addresses a WHERE token_hash = $1 AND purpose = $2`,
      [sha256(token), purpose],
    );
    const r = rows[0];
    if (r === undefined) return 'unknown';
    if (r.revoked) return 'revoked';
    if (r.expired) return 'expired';
    if (r.purpose === 'bounce') return { purpose: 'bounce', id: r.id, email: r.email as string };
    const owner = { id: r.id, userId: r.user_id as string, roomId: r.room_id as string };
    if (r.purpose === 'command') return { purpose: 'command', ...owner };
    return { purpose: 'reply', ...owner, target: { audience: r.post_audience as Audience, recipientId: r.post_recipient, kind: r.post_kind as MessageKind } };
  }

  /** Revokes every reply and command address of the user for the room; resolves to how many. */
  async revoke(userId: string, roomId: string): Promise<number> {
    const res = await this.pool.query('UPDATE inbound_addresses SET revoked_at = now() WHERE user_id = $1 AND room_id = $2 AND revoked_at IS NULL', [userId, roomId]);
    return res.rowCount ?? 0;
  }
}
