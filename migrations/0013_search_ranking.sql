-- Search ranking: the facts the tie-breakers rank by (src/emall/search/documents.py), in the
-- search mirror beside its other columns, so that degraded search (PostgreSQL answering while
-- Meilisearch is down) matches and orders as Meilisearch does (an offer's recent orders are
-- counted through order_lines_offer_idx, 0008). Rows written before this migration take the
-- defaults until ``emall search reindex`` rebuilds them (it rebuilds the index too, whose
-- documents then carry the new fields).

alter table offer_search
    add column min_order_qty  integer not null default 1,
    add column is_goods       boolean not null default false,
    add column category_terms text not null default '',
    add column supplier_score integer not null default 300,
    add column recent_orders  integer not null default 0;

create index offer_search_category_terms_trgm_idx
    on offer_search using gin (category_terms gin_trgm_ops);

-- A hit shows the offer's minimum order quantity: existing mirror rows get it now, so that
-- degraded search can answer before the re-index.
update offer_search s
set min_order_qty = o.min_order_qty, is_goods = s.category_code like 'A%',
    doc = s.doc || jsonb_build_object('min_order_qty', o.min_order_qty,
                                      'is_goods', s.category_code like 'A%')
from offers o
where o.id = s.offer_id;

-- The index's documents carry the new fields once the search worker has rebuilt them: every
-- listed offer is queued for it here, as a change of the listing would queue it, so that an
-- upgraded deployment re-ranks without anyone running `emall search reindex` (until the worker
-- reaches an offer, its old document answers, and its hit shows min_order_qty null).
insert into outbox (topic, aggregate_type, aggregate_id, payload)
select 'offer.changed', 'offer', id::text, '{"reason": "search_ranking"}'::jsonb
from offers
where status = 'listed'
order by id;
