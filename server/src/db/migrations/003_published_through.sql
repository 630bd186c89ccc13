-- "Complete up to": every message records, when it is committed, the highest seq of its room up
-- to which every message had already been confirmed by the broker (`published_through`). A
-- client that receives this message live on a subscription it held while those earlier messages
-- were routed therefore holds all of them it may see, and can move its resync point there
-- without guessing (docs/guarantees.md, "Complete up to").
--
-- The outbox learns each row's room and seq so the send function finds the room's oldest
-- unpublished message with one index probe under the room lock it already holds.

ALTER TABLE outbox ADD COLUMN room_id uuid, ADD COLUMN seq bigint;
UPDATE outbox o SET room_id = m.room_id, seq = m.seq FROM messages m WHERE m.id = o.message_id;
ALTER TABLE outbox ALTER COLUMN room_id SET NOT NULL, ALTER COLUMN seq SET NOT NULL;
CREATE INDEX outbox_room_pending ON outbox (room_id, seq) WHERE published_at IS NULL;

-- Rows from before this migration prove nothing: 0.
ALTER TABLE messages ADD COLUMN published_through bigint NOT NULL DEFAULT 0;

-- A learner's resync reads the messages addressed to it from a seq that may be older than the
-- room-wide one (docs/guarantees.md); this keeps that read to those few rows.
CREATE INDEX messages_recipient ON messages (room_id, recipient_id, seq) WHERE recipient_id IS NOT NULL;

DROP FUNCTION roomcast_send(uuid, uuid, text, text, text, uuid, text, jsonb, text);

CREATE FUNCTION roomcast_send(
  p_room uuid, p_sender uuid, p_client_msg_id text, p_request_hash text,
  p_audience text, p_recipient uuid, p_kind text, p_body jsonb, p_routing_key text
) RETURNS TABLE (
  outcome text, id uuid, room_id uuid, seq bigint, sender_id uuid, audience text,
  recipient_id uuid, kind text, body jsonb, client_msg_id text, created_at timestamptz,
  published_through bigint
) LANGUAGE plpgsql AS $$
DECLARE
  v_role text;
  v_seq bigint;
  v_through bigint;
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
    UPDATE rooms SET last_seq = last_seq + 1 WHERE rooms.id = p_room RETURNING last_seq INTO v_seq;
    -- Read after taking the room lock, in a statement of its own (a fresh snapshot): every
    -- earlier send of this room has committed, and a mark written since only makes it stricter.
    SELECT coalesce(min(o.seq) - 1, v_seq - 1) INTO v_through
      FROM outbox o WHERE o.room_id = p_room AND o.published_at IS NULL;
    INSERT INTO messages AS x (room_id, seq, sender_id, audience, recipient_id, kind, body, client_msg_id, request_hash, published_through)
    VALUES (p_room, v_seq, p_sender, p_audience, p_recipient, p_kind, p_body, p_client_msg_id, p_request_hash, v_through)
    RETURNING * INTO m;
    INSERT INTO outbox (message_id, routing_key, room_id, seq) VALUES (m.id, p_routing_key, p_room, v_seq);
    outcome := 'created';
  END IF;
  id := m.id; room_id := m.room_id; seq := m.seq; sender_id := m.sender_id; audience := m.audience;
  recipient_id := m.recipient_id; kind := m.kind; body := m.body; client_msg_id := m.client_msg_id;
  created_at := m.created_at; published_through := m.published_through;
  RETURN NEXT;
END;
$$;
