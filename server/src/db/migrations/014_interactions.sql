-- Interactions (decision 0013): polls, hands and the question board are `action` messages whose
-- body names their type. The send path reads a room's actions of a few types under the room's
-- lock (server/src/interactions/interaction-facts.ts); this index keeps that read to those rows,
-- whatever the room's length.
CREATE INDEX messages_actions ON messages (room_id, (body->>'type'), seq) WHERE kind = 'action';
