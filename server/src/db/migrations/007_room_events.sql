-- Room events for the feeds (docs/events.md): besides each message (`message.created`, placed
-- by its seq), a room has `room.created`, `member.joined` and `member.left`. Those are rows here,
-- numbered without gaps per room (`n`) under the room's row lock, and placed after the message
-- that was the room's newest when they happened (`after_seq`). The lock is the one sends take, so
-- the order (seq, then n) is the commit order: a cursor (seq, n) never skips an event that commits
-- later. Messages get no extra row: the send path writes nothing more than before.

ALTER TABLE rooms ADD COLUMN last_event_n bigint NOT NULL DEFAULT 0;

CREATE TABLE room_events (
  room_id    uuid NOT NULL REFERENCES rooms(id),
  n          bigint NOT NULL,
  after_seq  bigint NOT NULL,
  id         uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
  type       text NOT NULL CHECK (type IN ('room.created', 'member.joined', 'member.left')),
  user_id    uuid NOT NULL REFERENCES users(id),
  role       text NOT NULL CHECK (role IN ('instructor', 'learner')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (room_id, n)
);

CREATE FUNCTION roomcast_room_event(p_room uuid, p_type text, p_user uuid, p_role text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_n bigint;
  v_seq bigint;
BEGIN
  UPDATE rooms SET last_event_n = last_event_n + 1 WHERE id = p_room RETURNING last_event_n, last_seq INTO v_n, v_seq;
  INSERT INTO room_events (room_id, n, after_seq, type, user_id, role) VALUES (p_room, v_n, v_seq, p_type, p_user, p_role);
END;
$$;

CREATE FUNCTION roomcast_room_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM roomcast_room_event(NEW.id, 'room.created', NEW.created_by, 'instructor');
  RETURN NULL;
END;
$$;
CREATE TRIGGER rooms_event AFTER INSERT ON rooms FOR EACH ROW EXECUTE FUNCTION roomcast_room_created();

CREATE FUNCTION roomcast_membership_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM roomcast_room_event(NEW.room_id, 'member.joined', NEW.user_id, NEW.role);
  ELSE
    PERFORM roomcast_room_event(OLD.room_id, 'member.left', OLD.user_id, OLD.role);
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER memberships_event AFTER INSERT OR DELETE ON memberships FOR EACH ROW EXECUTE FUNCTION roomcast_membership_event();

-- The history before this migration, as well as it can be told: each room's creation, then its
-- members in the order they joined, each after the last message written before they joined.
INSERT INTO room_events (room_id, n, after_seq, type, user_id, role, created_at)
SELECT e.room_id, row_number() OVER (PARTITION BY e.room_id ORDER BY e.at, e.kind, e.user_id), e.after_seq, e.type, e.user_id, e.role, e.at
  FROM (
    SELECT r.id AS room_id, 0 AS kind, 'room.created' AS type, r.created_by AS user_id, 'instructor' AS role, r.created_at AS at, 0::bigint AS after_seq
      FROM rooms r
    UNION ALL
    SELECT ms.room_id, 1, 'member.joined', ms.user_id, ms.role, ms.joined_at,
           coalesce((SELECT max(m.seq) FROM messages m WHERE m.room_id = ms.room_id AND m.created_at <= ms.joined_at), 0)
      FROM memberships ms
  ) e;
UPDATE rooms r SET last_event_n = c.n FROM (SELECT room_id, max(n) AS n FROM room_events GROUP BY room_id) c WHERE r.id = c.room_id;
