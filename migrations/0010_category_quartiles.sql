-- The price flag's upper quartile of a large category, kept for a short while (价格监测).
--
-- Each approval and each price change of a listed offer compares its price with the upper
-- quartile of its category's other listed offers. Counting them reads every index entry of the
-- category: 21 ms for 116,658 offers, which at 100 changes a second is more CPU than the machine
-- has. A category with at least emall.listings.prices.QUARTILE_CACHE_MIN_PEERS listed offers
-- keeps its quartile here for QUARTILE_MAX_AGE_SECONDS, refreshed by the first check that finds
-- it older; smaller categories are computed exactly every time. The price statistics read by
-- people (GET /prices/stats) are always computed in full.
--
-- A cache, not a record: rows are replaced in place, nothing is audited, and deleting them all
-- is always safe.

create table category_quartiles (
    category_code      text not null,
    listed             bigint not null,
    upper_quartile_fen bigint not null,
    computed_at        timestamptz not null default now(),
    constraint category_quartiles_pkey primary key (category_code),
    constraint category_quartiles_category_fk foreign key (category_code)
        references categories (code) on delete cascade,
    constraint category_quartiles_listed_check check (listed > 0),
    constraint category_quartiles_quartile_check check (upper_quartile_fen >= 0)
);
