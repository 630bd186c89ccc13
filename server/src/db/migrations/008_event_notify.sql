-- Every room event (a message, or a row of room_events) tells listeners its room when its
-- transaction commits (NOTIFY is delivered at commit, never for a rolled-back one). Streams and
-- webhook dispatchers wake on it and read from Postgres after their own position, so a lost or
-- merged notification costs only latency, never an event (docs/events.md).
CREATE FUNCTION roomcast_notify_room_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('roomcast_room_events', NEW.room_id::text);
  RETURN NULL;
END;
$$;
CREATE TRIGGER messages_room_event_notify AFTER INSERT ON messages FOR EACH ROW EXECUTE FUNCTION roomcast_notify_room_event();
CREATE TRIGGER room_events_notify AFTER INSERT ON room_events FOR EACH ROW EXECUTE FUNCTION roomcast_notify_room_event();
