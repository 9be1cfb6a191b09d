-- Login throttling by username and client address, with a per-username slowdown (登录限制).
--
-- Counting failures per username alone let anyone lock any user out for the whole window by
-- sending wrong passwords under their name. Now:
-- * login_throttle counts attempts per (username, client address): past the limit that address
--   alone is refused (429 with Retry-After) until its window ends;
-- * login_slowdown counts the attempts checked for a username from every address: past its
--   ceiling each further check must wait a delay that doubles per attempt up to a cap, so a
--   guessing campaign from many addresses is slowed, and the user is never locked out: at
--   worst one check a cap's length. A successful login clears both rows of the username.
-- Throttle rows are counters, not records: nothing is audited, and deleting them is safe.

delete from login_throttle;

alter table login_throttle add column client_address text not null;
alter table login_throttle drop constraint login_throttle_pk;
alter table login_throttle
    add constraint login_throttle_pk primary key (username, client_address);

create table login_slowdown (
    username          text not null,
    checked           integer not null default 0,
    window_started_at timestamptz not null default now(),
    next_check_at     timestamptz not null default now(),
    constraint login_slowdown_pk primary key (username),
    constraint login_slowdown_checked_check check (checked >= 0)
);
