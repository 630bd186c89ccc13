-- Webhooks (docs/webhooks.md): endpoints instructors register for their rooms, the position each
-- endpoint has reached in its room, and a log of delivery attempts.
--
-- Delivery is leased work (queue 'webhook', docs/leased-work.md): one long-lived job per endpoint
-- and room, ref '<endpoint>:<room>', which delivers the room's events after the cursor below one
-- at a time and moves the cursor only after a 2xx (or after giving an event up). Why one job per
-- endpoint and room: docs/decisions/0010-webhook-order.md.

CREATE TABLE webhook_endpoints (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  room_id         uuid NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
  -- The instructor whose view of the room the endpoint gets, and who is mailed when it is disabled.
  owner_id        uuid NOT NULL REFERENCES users(id),
  url             text NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
  event_types     text[] NOT NULL CHECK (cardinality(event_types) > 0),
  description     text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
  -- 'whsec_' + base64 of 32 random bytes; signs every delivery.
  secret          text NOT NULL,
  -- After a rotation the old secret signs too, until previous_until.
  previous_secret text,
  previous_until  timestamptz,
  enabled         boolean NOT NULL DEFAULT true,
  -- paused: by an instructor; gone: the receiver answered 410; failing: every attempt failed for
  -- ROOMCAST_WEBHOOK_DISABLE_AFTER_MS; owner_left: its owner is no longer an instructor of the room.
  disabled_reason text CHECK (disabled_reason IN ('paused', 'gone', 'failing', 'owner_left')),
  disabled_at     timestamptz,
  -- The first failed attempt since the last 2xx; null while deliveries succeed.
  failing_since   timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CHECK (enabled = (disabled_reason IS NULL))
);
CREATE INDEX webhook_endpoints_room ON webhook_endpoints (room_id);

-- Where an endpoint stands in a room: everything up to (seq, n) is delivered or given up.
CREATE TABLE webhook_cursors (
  endpoint_id uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  room_id     uuid NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
  seq         bigint NOT NULL CHECK (seq >= 0),
  n           bigint NOT NULL CHECK (n >= 0),
  -- Attempts made at the event right after the cursor, and when the next one is due.
  attempts    integer NOT NULL DEFAULT 0,
  retry_at    timestamptz,
  -- A fencing token: every pass takes a new one, and a cursor write with an old one changes
  -- nothing, so a pass whose lease ran out (or that a replay or pause overtook) cannot move the
  -- cursor.
  fence       bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (endpoint_id, room_id)
);
CREATE INDEX webhook_cursors_room ON webhook_cursors (room_id);

-- Every delivery attempt, kept 7 days: what an instructor sees under /attempts.
CREATE TABLE webhook_attempts (
  id          bigserial PRIMARY KEY,
  endpoint_id uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  room_id     uuid NOT NULL,
  event_id    uuid NOT NULL,
  event_type  text NOT NULL,
  position    text NOT NULL,
  -- 1 for the event's first attempt, 2 for its first retry, ...
  attempt     integer NOT NULL,
  status      integer,
  response_ms integer NOT NULL,
  error       text,
  -- delivered: 2xx; retry: failed, will be retried; failed: failed and the schedule is used up, the
  -- stream moved on; gone: 410, the endpoint is disabled.
  outcome     text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed', 'gone')),
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id DESC);
CREATE INDEX webhook_attempts_at ON webhook_attempts (at);
