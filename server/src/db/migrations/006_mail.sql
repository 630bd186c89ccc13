-- E-mail: addresses, single-use links, notification choices, digest watermarks, suppressed
-- addresses and room visits (for reminders). The mail itself is leased work (migration 005):
-- queue 'notify' (one job per message that may concern someone), 'digest' (one per person, room
-- and window), 'reminders' (one sweep per interval) and 'mail' (one per mail to send).

ALTER TABLE users ADD COLUMN email text CHECK (email IS NULL OR length(email) BETWEEN 3 AND 254);
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
CREATE UNIQUE INDEX users_email ON users (lower(email)) WHERE email IS NOT NULL;

-- Links mailed to a person (verify an address, reset a password): the token is in the link, its
-- SHA-256 here, so a database leak does not hand out working links. Single use, expiring.
CREATE TABLE email_tokens (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    uuid NOT NULL REFERENCES users(id),
  purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
  token_hash text NOT NULL UNIQUE,
  email      text NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose);

-- How each person wants mail about each room; no row: immediately.
CREATE TABLE notification_prefs (
  user_id    uuid NOT NULL REFERENCES users(id),
  room_id    uuid NOT NULL REFERENCES rooms(id),
  mode       text NOT NULL CHECK (mode IN ('immediate', 'hourly', 'daily', 'off')),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, room_id)
);

-- The newest seq of a room a person's mail has covered: a digest lists what concerns them after
-- it, and moves it in the transaction that queues the digest, so a crash neither repeats nor
-- skips a digest's items.
CREATE TABLE mail_watermarks (
  user_id  uuid NOT NULL REFERENCES users(id),
  room_id  uuid NOT NULL REFERENCES rooms(id),
  last_seq bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, room_id)
);

-- Addresses the relay refused for good (5xx): no mail goes to them until an operator lifts it.
CREATE TABLE mail_suppressions (
  email      text PRIMARY KEY CHECK (email = lower(email)),
  reason     text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- When each member last opened each room, and when they were last reminded of it; no row: not
-- opened since joining.
CREATE TABLE room_visits (
  user_id        uuid NOT NULL REFERENCES users(id),
  room_id        uuid NOT NULL REFERENCES rooms(id),
  last_opened_at timestamptz NOT NULL DEFAULT now(),
  reminded_at    timestamptz,
  PRIMARY KEY (user_id, room_id)
);
CREATE INDEX room_visits_due ON room_visits (last_opened_at);

-- A message that may concern someone who is away gets a 'notify' job in its own transaction:
-- announcements, questions and messages to one member. The notifier decides who, if anyone.
CREATE FUNCTION roomcast_notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO jobs (queue, ref, payload) VALUES ('notify', NEW.id::text, '{}') ON CONFLICT DO NOTHING;
  RETURN NULL;
END;
$$;
CREATE TRIGGER messages_notify AFTER INSERT ON messages FOR EACH ROW
  WHEN (NEW.kind IN ('announcement', 'question') OR NEW.audience = 'member')
  EXECUTE FUNCTION roomcast_notify_job();
