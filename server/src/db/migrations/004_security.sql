-- Members an instructor removed from a room. Joining that room again with its invite code is
-- refused, or a removal would last only until the removed member typed the code once more.
-- Leaving on one's own leaves no row: a member who left may come back.

CREATE TABLE room_removals (
  room_id    uuid NOT NULL REFERENCES rooms(id),
  user_id    uuid NOT NULL REFERENCES users(id),
  removed_by uuid NOT NULL REFERENCES users(id),
  removed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (room_id, user_id)
);
