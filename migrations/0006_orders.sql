-- Ordering, part 2: carts, orders with their lines, idempotency keys and order flags.

-- A buyer's cart: offers and quantities, before checkout.
create table cart_items (
    user_id    bigint not null,
    offer_id   bigint not null,
    quantity   integer not null,
    added_at   timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint cart_items_pk primary key (user_id, offer_id),
    constraint cart_items_user_fk foreign key (user_id) references users (id),
    constraint cart_items_offer_fk foreign key (offer_id) references offers (id),
    constraint cart_items_quantity_check check (quantity between 1 and 1000000)
);

-- An order: one agency, one supplier, one budget line, checked against one city-rule version.
create table orders (
    id                    bigint generated always as identity,
    checkout_id           uuid not null,
    agency_id             bigint not null,
    buyer_user_id         bigint not null,
    supplier_id           bigint not null,
    region_code           text not null,
    delivery_region_code  text not null,
    budget_line_id        bigint not null,
    city_rule_id          bigint not null,
    status                text not null,
    total_fen             bigint not null,
    reserved_fen          bigint not null default 0,
    warnings              jsonb not null default '[]'::jsonb,
    version               integer not null default 1,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    constraint orders_pk primary key (id),
    constraint orders_agency_fk foreign key (agency_id) references organisations (id),
    constraint orders_buyer_fk foreign key (buyer_user_id) references users (id),
    constraint orders_supplier_fk foreign key (supplier_id) references organisations (id),
    constraint orders_region_fk foreign key (region_code) references regions (code),
    constraint orders_delivery_region_fk foreign key (delivery_region_code) references regions (code),
    constraint orders_budget_line_fk foreign key (budget_line_id) references budget_lines (id),
    constraint orders_city_rule_fk foreign key (city_rule_id) references city_rules (id),
    constraint orders_status_check check (status in (
        'pending_approval', 'submitted', 'confirmed', 'partially_confirmed', 'rejected',
        'shipped', 'delivered', 'accepted', 'settled', 'cancelled'
    )),
    constraint orders_total_check check (total_fen > 0),
    constraint orders_reserved_check check (reserved_fen >= 0 and reserved_fen <= total_fen)
);
create index orders_agency_idx on orders (agency_id, id);
create index orders_supplier_idx on orders (supplier_id, id);
create index orders_region_idx on orders (region_code, id);
create index orders_checkout_idx on orders (checkout_id);

-- What was ordered, as it was when ordered (a snapshot of the offer's terms).
create table order_lines (
    id                 bigint generated always as identity,
    order_id           bigint not null,
    offer_id           bigint not null,
    product_id         bigint not null,
    title              text not null,
    unit               text not null,
    category_code      text not null,
    category3_code     text not null,
    unit_price_fen     bigint not null,
    quantity           integer not null,
    line_total_fen     bigint not null,
    delivery_days      integer not null,
    policy_tags        text[] not null default '{}',
    confirmed_quantity integer,
    accepted_quantity  integer,
    constraint order_lines_pk primary key (id),
    constraint order_lines_order_fk foreign key (order_id) references orders (id) on delete cascade,
    constraint order_lines_offer_fk foreign key (offer_id) references offers (id),
    constraint order_lines_quantity_check check (quantity > 0),
    constraint order_lines_total_check check (line_total_fen = unit_price_fen * quantity),
    constraint order_lines_confirmed_check
        check (confirmed_quantity is null or confirmed_quantity between 0 and quantity),
    constraint order_lines_accepted_check
        check (accepted_quantity is null or accepted_quantity between 0 and coalesce(confirmed_quantity, quantity))
);
create index order_lines_order_idx on order_lines (order_id);
create index order_lines_category3_idx on order_lines (category3_code);

-- Idempotency keys: the same key with the same body answers the stored response; the same key
-- with another body is refused.
create table idempotency_keys (
    user_id       bigint not null,
    key           text not null,
    operation     text not null,
    request_hash  text not null,
    status_code   integer not null,
    response      jsonb not null,
    created_at    timestamptz not null default now(),
    constraint idempotency_keys_pk primary key (user_id, key),
    constraint idempotency_keys_user_fk foreign key (user_id) references users (id),
    constraint idempotency_keys_key_check check (length(key) between 1 and 200)
);

-- Orders flagged to the region's operator (order splitting, overdue payment).
create table order_flags (
    id          bigint generated always as identity,
    order_id    bigint not null,
    kind        text not null,
    region_code text not null,
    detail      jsonb not null default '{}'::jsonb,
    created_at  timestamptz not null default now(),
    resolved_at timestamptz,
    resolved_by bigint,
    resolution  text,
    constraint order_flags_pk primary key (id),
    constraint order_flags_order_fk foreign key (order_id) references orders (id) on delete cascade,
    constraint order_flags_region_fk foreign key (region_code) references regions (code),
    constraint order_flags_resolved_by_fk foreign key (resolved_by) references users (id),
    constraint order_flags_kind_check check (kind in ('splitting', 'overdue', 'price'))
);
create unique index order_flags_open_key on order_flags (order_id, kind) where resolved_at is null;
create index order_flags_region_idx on order_flags (region_code, id) where resolved_at is null;
