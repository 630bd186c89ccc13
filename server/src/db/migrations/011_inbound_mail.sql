-- Inbound mail (docs/inbound-mail.md): the addresses roomcast receives mail at, and the soft
-- bounces each address has had.
--
-- An address is `<purpose>+<token>@<inbound domain>`. The token is never stored: it is an HMAC of
-- the row's id under ROOMCAST_LINK_SECRET, so the row can be reused for every mail to the same
-- person and room without keeping the token, and only its SHA-256 is here to find the row by.
-- What a reply posts (audience, recipient, kind: the link to a private thread) lives in the row,
-- never in anything the sender could change.

CREATE TABLE inbound_addresses (
  id             uuid PRIMARY KEY,
  purpose        text NOT NULL CHECK (purpose IN ('reply', 'command', 'bounce')),
  token_hash     text NOT NULL UNIQUE,
  -- reply and command: whose address it is, for which room.
  user_id        uuid REFERENCES users(id),
  room_id        uuid REFERENCES rooms(id) ON DELETE CASCADE,
  -- reply: what a reply to it posts.
  post_audience  text CHECK (post_audience IN ('everyone', 'instructors', 'member')),
  post_recipient uuid REFERENCES users(id),
  post_kind      text,
  -- bounce: the address our mail went to (the return path of every mail to it).
  email          text CHECK (email = lower(email)),
  expires_at     timestamptz NOT NULL,
  revoked_at     timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  CHECK (CASE purpose
           WHEN 'bounce' THEN email IS NOT NULL AND user_id IS NULL
           WHEN 'reply' THEN user_id IS NOT NULL AND room_id IS NOT NULL AND post_audience IS NOT NULL AND post_kind IS NOT NULL
           ELSE user_id IS NOT NULL AND room_id IS NOT NULL
         END)
);
-- Finding the live row to reuse when the next mail to the same person and room is made.
CREATE INDEX inbound_addresses_user ON inbound_addresses (user_id, room_id, purpose) WHERE revoked_at IS NULL AND user_id IS NOT NULL;
CREATE INDEX inbound_addresses_email ON inbound_addresses (email) WHERE purpose = 'bounce' AND revoked_at IS NULL;

-- Temporary delivery failures (4.x.x) reported by DSNs: counted per address in a window; enough
-- of them in one window suppress the address like a hard bounce (mail_suppressions, migration 006).
CREATE TABLE mail_soft_bounces (
  email       text PRIMARY KEY CHECK (email = lower(email)),
  count       int NOT NULL,
  first_at    timestamptz NOT NULL DEFAULT now(),
  last_at     timestamptz NOT NULL DEFAULT now(),
  last_status text NOT NULL
);
