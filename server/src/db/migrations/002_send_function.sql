-- The send transaction as one function, so a send costs one round trip to Postgres and the
-- room row lock is held for the shortest time. Same steps as before: lock the room, replay an
-- earlier copy of the client message id, check the recipient, take the next seq, insert the
-- message and its outbox row. The outcome column tells the caller which branch was taken.

CREATE FUNCTION roomcast_send(
  p_room uuid, p_sender uuid, p_client_msg_id text, p_request_hash text,
  p_audience text, p_recipient uuid, p_kind text, p_body jsonb, p_routing_key text
) RETURNS TABLE (
  outcome text, id uuid, room_id uuid, seq bigint, sender_id uuid, audience text,
  recipient_id uuid, kind text, body jsonb, client_msg_id text, created_at timestamptz
) LANGUAGE plpgsql AS $$
DECLARE
  v_role text;
  v_seq bigint;
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
    INSERT INTO messages AS x (room_id, seq, sender_id, audience, recipient_id, kind, body, client_msg_id, request_hash)
    VALUES (p_room, v_seq, p_sender, p_audience, p_recipient, p_kind, p_body, p_client_msg_id, p_request_hash)
    RETURNING * INTO m;
    INSERT INTO outbox (message_id, routing_key) VALUES (m.id, p_routing_key);
    outcome := 'created';
  END IF;
  id := m.id; room_id := m.room_id; seq := m.seq; sender_id := m.sender_id; audience := m.audience;
  recipient_id := m.recipient_id; kind := m.kind; body := m.body; client_msg_id := m.client_msg_id;
  created_at := m.created_at;
  RETURN NEXT;
END;
$$;
