-- Bulk announcements by e-mail (docs/campaigns.md, decision 0011). A campaign is a row here and
-- a job queue of its own, 'campaign:<id>', with one job per recipient: the recipient's progress
-- is the job's (pending, leased while it is being sent, done or failed), never a counter or a
-- last-id cursor, so a resume touches only recipients that are not final.

-- How a finished job ended, in its queue's words, and the far side's last answer. Campaign
-- recipients end 'sent' (with the relay's 250 answer), 'suppressed', 'cancelled' or 'refused'.
ALTER TABLE jobs ADD COLUMN outcome text CHECK (outcome IS NULL OR length(outcome) <= 40);
ALTER TABLE jobs ADD COLUMN answer text;

CREATE TABLE campaigns (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- The instructor who sent it; null for one the operators sent (the admin API).
  created_by    uuid REFERENCES users(id),
  -- Who may see and steer it besides its creator: the instructors of these rooms.
  room_ids      uuid[] NOT NULL CHECK (cardinality(room_ids) BETWEEN 1 AND 1000),
  subject       text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
  body          text NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
  state         text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'paused', 'cancelled', 'done')),
  -- 'user': paused by hand, resumed by hand. 'gate': the load gate paused it at its deadline and
  -- resumes it when the mail server is healthy again.
  paused_by     text CHECK (paused_by IN ('user', 'gate')),
  pause_reason  text,
  paused_at     timestamptz,
  -- Where it stopped: the counts at the pause and the first recipient still to send.
  stop_point    jsonb,
  -- What the load gate last said while it held sending back (null while it lets mail through).
  gate_note     text,
  recipients    integer NOT NULL CHECK (recipients >= 0),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  CHECK ((state = 'paused') = (paused_by IS NOT NULL)),
  CHECK ((state IN ('cancelled', 'done')) = (finished_at IS NOT NULL))
);
CREATE INDEX campaigns_active ON campaigns (created_at) WHERE state IN ('running', 'paused');
CREATE INDEX campaigns_rooms ON campaigns USING gin (room_ids);

-- The send-rate ceilings, counted here rather than in memory so they hold across restarts and
-- across app servers: mails handed to the relay per second of the database's clock.
CREATE TABLE mail_rate (
  at   timestamptz PRIMARY KEY,
  sent integer NOT NULL CHECK (sent >= 0)
);
