-- Group commit (issue 17): several sends in one transaction and one round trip, so a batch costs
-- one WAL flush and one network round trip instead of one per message. Each send is exactly
-- roomcast_send (migration 005), in the order given within a room, so seqs stay gapless and in
-- arrival order. Rooms are locked in room id order: two batches that share rooms wait on each
-- other in one direction only, never in a cycle. `ord` is the send's 1-based place in the input.
CREATE FUNCTION roomcast_send_batch(p_sends jsonb, p_lease_ms integer)
RETURNS TABLE (
  ord integer, outcome text, id uuid, room_id uuid, seq bigint, sender_id uuid, audience text,
  recipient_id uuid, kind text, body jsonb, client_msg_id text, created_at timestamptz,
  broadcast_seq bigint, job_id bigint
) LANGUAGE plpgsql AS $$
DECLARE
  s record;
BEGIN
  FOR s IN
    SELECT e.value AS v, e.ordinality::integer AS n
      FROM jsonb_array_elements(p_sends) WITH ORDINALITY AS e
     ORDER BY (e.value->>'room')::uuid, e.ordinality
  LOOP
    RETURN QUERY
      SELECT s.n, r.*
        FROM roomcast_send((s.v->>'room')::uuid, (s.v->>'sender')::uuid, s.v->>'clientMsgId', s.v->>'hash',
                           s.v->>'audience', (s.v->>'recipient')::uuid, s.v->>'kind', s.v->'body', p_lease_ms) AS r;
  END LOOP;
END;
$$;
