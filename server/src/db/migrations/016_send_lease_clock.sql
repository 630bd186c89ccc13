-- A send's publish job is leased to its request from the moment the row is written, not from the
-- start of its transaction: now() is the transaction's start, and a batch of sends (migration
-- 015) that waited on room locks could commit a job whose lease had already run out, which a
-- relay would then publish while the request did too. Otherwise exactly migration 005's function.
CREATE OR REPLACE FUNCTION roomcast_send(
  p_room uuid, p_sender uuid, p_client_msg_id text, p_request_hash text,
  p_audience text, p_recipient uuid, p_kind text, p_body jsonb, p_lease_ms integer
) RETURNS TABLE (
  outcome text, id uuid, room_id uuid, seq bigint, sender_id uuid, audience text,
  recipient_id uuid, kind text, body jsonb, client_msg_id text, created_at timestamptz,
  broadcast_seq bigint, job_id bigint
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
    INSERT INTO jobs AS j (queue, ref, attempts, lease_until)
    VALUES ('publish', m.id::text, 1, clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0))
    RETURNING j.id INTO job_id;
    outcome := 'created';
  END IF;
  id := m.id; room_id := m.room_id; seq := m.seq; sender_id := m.sender_id; audience := m.audience;
  recipient_id := m.recipient_id; kind := m.kind; body := m.body; client_msg_id := m.client_msg_id;
  created_at := m.created_at; broadcast_seq := m.broadcast_seq;
  RETURN NEXT;
END;
$$;
