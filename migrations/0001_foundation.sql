-- Foundation: organisations, users, API keys, login throttling, the audit log and the outbox.

create table organisations (
    id          bigint generated always as identity,
    kind        text not null,
    name        text not null,
    region_code text not null,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint organisations_pk primary key (id),
    constraint organisations_kind_check
        check (kind in ('agency', 'supplier', 'operator', 'platform')),
    constraint organisations_region_code_check check (region_code ~ '^[0-9]{6}$'),
    constraint organisations_name_check check (length(btrim(name)) between 1 and 200)
);
create unique index organisations_kind_name_region_key
    on organisations (kind, name, region_code);

create table users (
    id              bigint generated always as identity,
    organisation_id bigint not null,
    username        text not null,
    display_name    text not null,
    password_hash   text not null,
    roles           text[] not null default '{}',
    is_active       boolean not null default true,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    deactivated_at  timestamptz,
    constraint users_pk primary key (id),
    constraint users_organisation_fk foreign key (organisation_id) references organisations (id),
    constraint users_username_check check (username ~ '^[a-z0-9][a-z0-9_.-]{2,63}$'),
    constraint users_roles_check check (roles <@ array[
        'agency_buyer', 'agency_approver', 'agency_admin',
        'supplier_admin', 'supplier_staff',
        'operator', 'auditor', 'platform_admin'
    ]::text[]),
    constraint users_deactivated_check check (is_active = (deactivated_at is null))
);
create unique index users_username_key on users (username);
create index users_organisation_idx on users (organisation_id);

-- API keys for partner-city systems. The secret is shown once; only its SHA-256 is kept
-- (a 256-bit random secret needs no slow hash). The prefix identifies the key in logs and lists.
create table api_keys (
    id              bigint generated always as identity,
    prefix          text not null,
    secret_sha256   bytea not null,
    name            text not null,
    user_id         bigint not null,
    organisation_id bigint not null,
    roles           text[] not null,
    created_at      timestamptz not null default now(),
    expires_at      timestamptz,
    revoked_at      timestamptz,
    last_used_at    timestamptz,
    constraint api_keys_pk primary key (id),
    constraint api_keys_prefix_key unique (prefix),
    constraint api_keys_user_fk foreign key (user_id) references users (id),
    constraint api_keys_organisation_fk
        foreign key (organisation_id) references organisations (id),
    constraint api_keys_name_check check (length(btrim(name)) between 1 and 100),
    constraint api_keys_secret_check check (octet_length(secret_sha256) = 32)
);
create index api_keys_organisation_idx on api_keys (organisation_id);

-- Login attempts per username within the current window, for throttling. An attempt is counted
-- before the password is checked (so a concurrent burst cannot slip past the limit) and the row
-- is removed on a successful login.
create table login_throttle (
    username          text not null,
    failures          integer not null default 0,
    window_started_at timestamptz not null default now(),
    constraint login_throttle_pk primary key (username),
    constraint login_throttle_failures_check check (failures >= 0)
);

-- Every state change writes one audit event in the same transaction as the change.
create table audit_events (
    id                    bigint generated always as identity,
    occurred_at           timestamptz not null default now(),
    actor_user_id         bigint,
    actor_organisation_id bigint,
    action                text not null,
    entity_type           text not null,
    entity_id             text not null,
    region_code           text,
    before                jsonb,
    after                 jsonb,
    request_id            text,
    constraint audit_events_pk primary key (id)
);
create index audit_events_entity_idx on audit_events (entity_type, entity_id, id);
create index audit_events_actor_org_idx on audit_events (actor_organisation_id, id);

-- Whatever must follow a change (search indexing, webhooks, statistics) is written here in the
-- change's transaction and consumed after commit by `emall worker`.
create table outbox (
    id             bigint generated always as identity,
    topic          text not null,
    aggregate_type text not null,
    aggregate_id   text not null,
    payload        jsonb not null default '{}'::jsonb,
    created_at     timestamptz not null default now(),
    available_at   timestamptz not null default now(),
    attempts       integer not null default 0,
    last_error     text,
    processed_at   timestamptz,
    parked_at      timestamptz,
    constraint outbox_pk primary key (id),
    constraint outbox_attempts_check check (attempts >= 0)
);
create index outbox_pending_idx on outbox (available_at, id)
    where processed_at is null and parked_at is null;

create function outbox_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('emall_outbox', new.topic);
    return null;
end;
$$;

create trigger outbox_notify_after_insert
    after insert on outbox
    for each row execute function outbox_notify();
