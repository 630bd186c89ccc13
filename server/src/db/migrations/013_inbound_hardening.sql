-- Inbound mail after review (docs/inbound-mail.md, migration 011).
--
-- What a reply posts is checked like the rest of the row: a kind the send path knows.
ALTER TABLE inbound_addresses
  ADD CONSTRAINT inbound_addresses_post_kind CHECK (post_kind IN ('chat', 'question', 'answer', 'action', 'announcement'));

-- Rows stop working when they expire or are revoked, and are deleted some time after
-- (InboundAddresses.issue prunes a few whenever it makes a new one); LEAST ignores a NULL
-- revoked_at, so this is when the row stopped working.
CREATE INDEX inbound_addresses_ended ON inbound_addresses (LEAST(expires_at, revoked_at));
