-- A gapless number for the room's messages to everyone (`broadcast_seq`), beside the room-wide
-- seq. A learner receives only some seqs (instructor-only and other people's direct messages
-- leave legitimate gaps), so from seqs alone it cannot tell a message it may not see from one it
-- missed. Messages to everyone are exactly what its room-wide subscription carries, and they are
-- numbered without gaps: a hole in that numbering is a message it has not received yet, and the
-- newest seq up to which it holds every one of them is a resync point proven complete
-- (docs/guarantees.md, "Complete up to"). Instructors receive every message: seq serves them.

-- The backfill reads every message once: on a large database it takes minutes (about 110 s for
-- 3 million messages), longer than the app's statement timeout, and holds the tables' locks
-- meanwhile, so sends wait until it is done. Plan the upgrade for a quiet moment.
SET LOCAL statement_timeout = 0;

ALTER TABLE rooms ADD COLUMN last_broadcast_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN broadcast_seq bigint;

UPDATE messages m SET broadcast_seq = n.k
  FROM (SELECT id, row_number() OVER (PARTITION BY room_id ORDER BY seq) AS k
          FROM messages WHERE audience = 'everyone') n
 WHERE m.id = n.id;
UPDATE rooms r SET last_broadcast_seq = b.k
  FROM (SELECT room_id, max(broadcast_seq) AS k FROM messages GROUP BY room_id) b
 WHERE r.id = b.room_id AND b.k IS NOT NULL;

ALTER TABLE messages ADD CONSTRAINT messages_broadcast_seq
  CHECK ((audience = 'everyone') = (broadcast_seq IS NOT NULL));
ALTER TABLE messages ADD CONSTRAINT messages_room_broadcast_seq UNIQUE (room_id, broadcast_seq);

-- A learner's resync reads its own messages and those addressed to it from a seq that may be
-- older than the room-wide one; these keep that read to those few rows.
CREATE INDEX messages_recipient ON messages (room_id, recipient_id, seq) WHERE recipient_id IS NOT NULL;
CREATE INDEX messages_sender_personal ON messages (room_id, sender_id, seq) WHERE audience <> 'everyone';

DROP FUNCTION roomcast_send(uuid, uuid, text, text, text, uuid, text, jsonb, text);

CREATE FUNCTION roomcast_send(
  p_room uuid, p_sender uuid, p_client_msg_id text, p_request_hash text,
  p_audience text, p_recipient uuid, p_kind text, p_body jsonb, p_routing_key text
) RETURNS TABLE (
  outcome text, id uuid, room_id uuid, seq bigint, sender_id uuid, audience text,
  recipient_id uuid, kind text, body jsonb, client_msg_id text, created_at timestamptz,
  broadcast_seq bigint
) LANGUAGE plpgsql AS $$
DECLARE
  v_role text;
  v_seq bigint;
  v_broadcast bigint;
  m messages%ROWTYPE;
BEGIN
  SELECT ms.role INTO v_role
    FROM rooms r LEFT JOIN memberships ms ON ms.room_id = r.id AND ms.user_id = p_sender
   WHERE r.id = p_room
   FOR UPDATE OF r;
  IF NOT FOUND THEN
    outcome := 'room_not_found'; RETURN NEXT; RETURN;
  END IF;
  IF v_role IS NULL THEN
    outcome := 'not_a_member'; RETURN NEXT; RETURN;
  END IF;

  SELECT * INTO m FROM messages x
   WHERE x.room_id = p_room AND x.sender_id = p_sender AND x.client_msg_id = p_client_msg_id;
  IF FOUND THEN
    outcome := CASE WHEN m.request_hash = p_request_hash THEN 'replayed' ELSE 'idempotency_conflict' END;
  ELSE
    IF p_audience = 'member' AND NOT EXISTS (
      SELECT 1 FROM memberships x WHERE x.room_id = p_room AND x.user_id = p_recipient) THEN
      outcome := 'recipient_not_found'; RETURN NEXT; RETURN;
    END IF;
    -- Both numbers move under the room lock, in the same row: each is gapless and in commit order.
    UPDATE rooms SET last_seq = last_seq + 1,
                     last_broadcast_seq = last_broadcast_seq + (p_audience = 'everyone')::int
     WHERE rooms.id = p_room
    RETURNING last_seq, CASE WHEN p_audience = 'everyone' THEN last_broadcast_seq END INTO v_seq, v_broadcast;
    INSERT INTO messages AS x (room_id, seq, sender_id, audience, recipient_id, kind, body, client_msg_id, request_hash, broadcast_seq)
    VALUES (p_room, v_seq, p_sender, p_audience, p_recipient, p_kind, p_body, p_client_msg_id, p_request_hash, v_broadcast)
    RETURNING * INTO m;
    INSERT INTO outbox (message_id, routing_key) VALUES (m.id, p_routing_key);
    outcome := 'created';
  END IF;
  id := m.id; room_id := m.room_id; seq := m.seq; sender_id := m.sender_id; audience := m.audience;
  recipient_id := m.recipient_id; kind := m.kind; body := m.body; client_msg_id := m.client_msg_id;
  created_at := m.created_at; broadcast_seq := m.broadcast_seq;
  RETURN NEXT;
END;
$$;
