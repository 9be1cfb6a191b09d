-- Search: a PostgreSQL mirror of the Meilisearch offer documents (src/emall/search/documents.py).
-- Degraded search reads it when Meilisearch is down, and ``verify`` compares the index with it.
-- Only listed offers have a row; the sync worker upserts and deletes rows in the transaction
-- that claims the outbox rows, so the mirror never lags the catalogue.
create table offer_search (
    offer_id         bigint not null,
    title            text not null,
    brand            text not null,
    model            text not null,
    category_code    text not null,
    category_codes   text[] not null,
    category_names   text not null,
    specs_text       text not null,
    supplier_id      bigint not null,
    supplier_name    text not null,
    price_fen        bigint not null,
    policy_tags      text[] not null default '{}',
    delivery_regions text[] not null default '{}',
    buyable_regions  text[] not null default '{}',
    blocked_regions  text[] not null default '{}',
    title_pinyin     text not null,
    title_initials   text not null,
    category_pinyin  text not null,
    sales_count      integer not null default 0,
    updated_at       timestamptz not null,
    doc              jsonb not null,
    constraint offer_search_pk primary key (offer_id),
    constraint offer_search_offer_fk foreign key (offer_id) references offers (id) on delete cascade,
    constraint offer_search_doc_check check (jsonb_typeof(doc) = 'object')
);
create index offer_search_title_trgm_idx on offer_search using gin (title gin_trgm_ops);
create index offer_search_category_names_trgm_idx
    on offer_search using gin (category_names gin_trgm_ops);
create index offer_search_title_pinyin_trgm_idx
    on offer_search using gin (title_pinyin gin_trgm_ops);
create index offer_search_category_codes_idx on offer_search using gin (category_codes);
create index offer_search_buyable_regions_idx on offer_search using gin (buyable_regions);
create index offer_search_delivery_regions_idx on offer_search using gin (delivery_regions);
create index offer_search_policy_tags_idx on offer_search using gin (policy_tags);
create index offer_search_supplier_idx on offer_search (supplier_id);
