-- Campaigns (migration 010), made safe to ask for twice: a client's Idempotency-Key makes a
-- retried POST return the campaign the first one started instead of mailing everyone again.
ALTER TABLE campaigns ADD COLUMN idempotency_key text CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 1 AND 100);
CREATE UNIQUE INDEX campaigns_idempotency ON campaigns (coalesce(created_by, '00000000-0000-0000-0000-000000000000'::uuid), idempotency_key)
  WHERE idempotency_key IS NOT NULL;
COMMENT ON COLUMN campaigns.pause_reason IS 'Why it is paused, or why roomcast cancelled it (its sender no longer teaches every room)';
