-- Users, rooms, memberships, messages and the publish outbox.

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,39}$'),
  display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 80),
  role          text NOT NULL CHECK (role IN ('instructor', 'learner')),
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rooms (
  id          uuid PRIMARY KEY,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
  invite_code text NOT NULL UNIQUE,
  created_by  uuid NOT NULL REFERENCES users(id),
  -- The last sequence number handed out; incremented under the row lock in the send transaction,
  -- so seqs are gapless and totally ordered per room.
  last_seq    bigint NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
  room_id   uuid NOT NULL REFERENCES rooms(id),
  user_id   uuid NOT NULL REFERENCES users(id),
  role      text NOT NULL CHECK (role IN ('instructor', 'learner')),
  joined_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE messages (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  room_id       uuid NOT NULL REFERENCES rooms(id),
  seq           bigint NOT NULL,
  sender_id     uuid NOT NULL REFERENCES users(id),
  audience      text NOT NULL CHECK (audience IN ('everyone', 'instructors', 'member')),
  recipient_id  uuid REFERENCES users(id),
  kind          text NOT NULL,
  body          jsonb NOT NULL,
  client_msg_id text NOT NULL,
  -- Hash of the request, so a retry that reuses a client id for different content is refused.
  request_hash  text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (room_id, seq),
  UNIQUE (room_id, sender_id, client_msg_id),
  CHECK ((audience = 'member') = (recipient_id IS NOT NULL))
);

CREATE TABLE outbox (
  id            bigserial PRIMARY KEY,
  message_id    uuid NOT NULL UNIQUE REFERENCES messages(id),
  routing_key   text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz,
  attempts      integer NOT NULL DEFAULT 0,
  -- A relay that claims a row owns it until then; another relay skips it meanwhile.
  claimed_until timestamptz
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
