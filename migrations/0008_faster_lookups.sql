-- Lookups that every scoped query makes, made cheaper.

-- A region's chain (itself, then its ancestors) by three joins instead of a recursive query:
-- about a tenth of the time per call (0.33 ms → 0.035 ms measured), and it is called for every
-- order, flag and budget line a scoped list reads. Regions have three levels at most
-- (regions_level_check: province, city, county), so three joins reach the top.
create or replace function region_chain(p_code text) returns text[]
language sql stable strict parallel safe as $$
    select array_remove(array[r0.code, r1.code, r2.code], null)
    from regions r0
    left join regions r1 on r1.code = r0.parent_code
    left join regions r2 on r2.code = r1.parent_code
    where r0.code = p_code
$$;

-- Foreign keys to offers are checked from the other side when an offer is deleted, and
-- "which carts and orders hold this offer" is asked when an offer is delisted.
create index order_lines_offer_idx on order_lines (offer_id);
create index cart_items_offer_idx on cart_items (offer_id);

-- Each API process caches principals (emall.identity.principal_cache) and LISTENs on
-- emall_principal: every change that can alter one tells them at commit, with the user's id,
-- or '*' for everyone (an organisation's name or kind, a partnership's member regions).
create function notify_principal_change() returns trigger
language plpgsql as $$
begin
    if tg_level = 'STATEMENT' then
        perform pg_notify('emall_principal', '*');
    elsif tg_op = 'DELETE' then
        perform pg_notify('emall_principal', to_jsonb(old) ->> tg_argv[0]);
    else
        perform pg_notify('emall_principal', to_jsonb(new) ->> tg_argv[0]);
        if tg_op = 'UPDATE' and (to_jsonb(old) ->> tg_argv[0]) is distinct from (to_jsonb(new) ->> tg_argv[0]) then
            perform pg_notify('emall_principal', to_jsonb(old) ->> tg_argv[0]);
        end if;
    end if;
    return null;
end
$$;

create trigger users_principal_notify
    after update of username, roles, is_active, organisation_id, scope_partnership_id or delete
    on users for each row execute function notify_principal_change('id');
create trigger api_keys_principal_notify
    after update of revoked_at, roles, expires_at, user_id, organisation_id or delete
    on api_keys for each row execute function notify_principal_change('user_id');
create trigger organisations_principal_notify
    after update of name, kind, region_code or delete
    on organisations for each statement execute function notify_principal_change();
create trigger partnership_members_principal_notify
    after insert or update of joined_on, left_on, region_code, partnership_id or delete
    on partnership_members for each statement execute function notify_principal_change();
