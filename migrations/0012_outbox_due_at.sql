-- The moment an outbox row became due, kept apart from available_at (which backoff moves on), so
-- that a consumer's lag is the age of its oldest due row: a row scheduled for a later day
-- (not_before) adds no lag before that day, and a row that keeps failing adds all of it.
alter table outbox add column due_at timestamptz;
update outbox set due_at = case when attempts = 0 then available_at else created_at end;
alter table outbox alter column due_at set default now();
alter table outbox alter column due_at set not null;
create index outbox_due_idx on outbox (topic, due_at)
    where processed_at is null and parked_at is null;
