-- Ordering, part 1: agencies' budget lines with their ledger, and per-region city rules.

-- Budget lines (预算指标): money an agency may spend, by fiscal year and funding source.
-- The database guards the invariant: nothing negative, and reserved + spent never exceeds the
-- amount. Every movement is a ledger row, written in the same transaction as the line change.
create table budget_lines (
    id             bigint generated always as identity,
    agency_id      bigint not null,
    fiscal_year    integer not null,
    funding_source text not null,
    name           text not null,
    amount_fen     bigint not null default 0,
    reserved_fen   bigint not null default 0,
    spent_fen      bigint not null default 0,
    version        integer not null default 1,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    constraint budget_lines_pk primary key (id),
    constraint budget_lines_agency_fk foreign key (agency_id) references organisations (id),
    constraint budget_lines_key unique (agency_id, fiscal_year, funding_source, name),
    constraint budget_lines_year_check check (fiscal_year between 2000 and 2100),
    constraint budget_lines_source_check check (funding_source in (
        'general_public_budget', 'government_fund', 'state_capital', 'fiscal_special',
        'own_funds', 'other'
    )),
    constraint budget_lines_name_check check (length(btrim(name)) between 1 and 200),
    constraint budget_lines_nonnegative_check
        check (amount_fen >= 0 and reserved_fen >= 0 and spent_fen >= 0),
    constraint budget_lines_balance_check check (reserved_fen + spent_fen <= amount_fen)
);
create index budget_lines_agency_idx on budget_lines (agency_id, fiscal_year);

-- Every movement of a budget line. ``amount_fen`` is positive; the kind says what it does:
--   allocate: amount += x        adjust: amount += x (x may be negative: a cut)
--   reserve:  reserved += x      release: reserved -= x
--   spend:    reserved -= x, spent += x (settlement of a reserved amount)
create table budget_ledger (
    id             bigint generated always as identity,
    budget_line_id bigint not null,
    kind           text not null,
    amount_fen     bigint not null,
    order_id       bigint,
    note           text not null default '',
    created_by     bigint,
    created_at     timestamptz not null default now(),
    constraint budget_ledger_pk primary key (id),
    constraint budget_ledger_line_fk foreign key (budget_line_id) references budget_lines (id),
    constraint budget_ledger_created_by_fk foreign key (created_by) references users (id),
    constraint budget_ledger_kind_check
        check (kind in ('allocate', 'adjust', 'reserve', 'release', 'spend')),
    constraint budget_ledger_amount_check check (kind = 'adjust' or amount_fen > 0)
);
create index budget_ledger_line_idx on budget_ledger (budget_line_id, id);
create index budget_ledger_order_idx on budget_ledger (order_id) where order_id is not null;

-- City rules (限额标准 and more), per region, effective-dated and versioned. A version is in
-- force from its effective_from until the next version's; old versions stay readable, and each
-- order records the version it was checked against.
create table city_rules (
    id                     bigint generated always as identity,
    region_code            text not null,
    version                integer not null,
    effective_from         date not null,
    ceiling_fen            bigint not null,
    approval_threshold_fen bigint not null,
    splitting_window_days  integer not null default 30,
    payment_term_days      integer not null default 30,
    note                   text not null default '',
    created_by             bigint,
    created_at             timestamptz not null default now(),
    constraint city_rules_pk primary key (id),
    constraint city_rules_region_fk foreign key (region_code) references regions (code),
    constraint city_rules_created_by_fk foreign key (created_by) references users (id),
    constraint city_rules_version_key unique (region_code, version),
    constraint city_rules_effective_key unique (region_code, effective_from),
    constraint city_rules_amounts_check
        check (ceiling_fen > 0 and approval_threshold_fen >= 0 and approval_threshold_fen <= ceiling_fen),
    constraint city_rules_window_check check (splitting_window_days between 1 and 366),
    constraint city_rules_term_check check (payment_term_days between 1 and 365)
);
