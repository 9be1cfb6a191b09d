"""Saving the valid rows of an import: one transaction, set-based, in batches.

``FileSaver.save`` applies one batch of a file's rows (``Staged``: checked rows turned into
staging records, with no database, so that it can be done in a thread); the batches of a file
are saved in file order on one connection inside the caller's transaction. ``save_rows`` saves
a whole file as one batch.

A batch goes into temporary tables with ``COPY`` and every step is one statement over the batch
(no per-row round trips). Each row draws a new product id and a new offer id from the tables'
sequences as it is copied, used only when the row creates that product or offer, so that no
step has to write generated ids back into the temporary table:

1. missing products are created (a product is found by category, brand and model, compared
   without case or white space; an existing product is used as it is);
2. offers are matched by the supplier's SKU: a new SKU creates a ``draft`` offer; an existing
   offer whose terms differ is updated (``version + 1``); an identical one is not written at all;
3. delivery regions of created and updated offers are replaced, and a price-history row is
   written for every new offer and every price change;
4. a listed offer whose price rises more than its region's rule above its lowest price in the
   window goes back to review (``submitted``); every updated offer that was listed gets an
   ``offer.changed`` outbox row, so that buyers see the change;
5. an audit event per created product and per created or updated offer (``offer.imported``),
   and the outbox rows of step 4, written by ``emall.audit.record`` in one statement;
6. what was done with each row (``import_job_rows``): the product matched or created, with the
   fields of the row a matched product kept (``unapplied``), and the offer created, updated or
   unchanged, with both ids.

Rows, events and outbox rows are written in row order within a batch, batch after batch (so the
``product.created`` events of a batch follow the ``offer.imported`` events of the one before).

A row whose product an earlier row of the file already has (in this batch or an earlier one),
or whose product the supplier offered under another SKU before the import, cannot be saved (one
offer per supplier and product); it is reported as a row error and the rest are saved. To judge
later batches as the whole file would be judged, the saver remembers the products of the rows
saved so far (``import_seen``) and the products that earlier batches moved offers away from
(``import_moved``).

The caller owns the transaction: a failure anywhere leaves nothing applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from emall.audit import AuditEvent, OutboxMessage, record
from emall.db.pool import Connection
from emall.imports.models import RowError
from emall.listings.models import OfferRow
from emall.listings.prices import PriceRule, exceeds_rise, price_rule
from emall.principals import Principal

RISE_REASON = "价格上涨超过规定比例，需重新审核 (price rise needs review)"

_ROW_COLUMNS = (
    "row_no",
    "supplier_sku",
    "category_code",
    "brand",
    "model",
    "title",
    "specs",
    "image_urls",
    "unit",
    "price_fen",
    "reference_price_fen",
    "reference_source_url",
    "reference_date",
    "stock",
    "min_order_qty",
    "warranty_months",
    "policy_tags",
    "delivery_key",
)


def _create_temp_tables(product_sequence: int, offer_sequence: int) -> str:
    """The staging tables; the ids default to the next values of the given sequences (oids)."""
    return f"""
drop table if exists pg_temp.import_rows;
drop table if exists pg_temp.import_delivery;
drop table if exists pg_temp.import_seen;
drop table if exists pg_temp.import_moved;
create temp table import_rows (
    row_no               integer primary key,
    supplier_sku         text not null,
    category_code        text not null,
    brand                text not null,
    model                text not null,
    title                text not null,
    specs                text not null,  -- JSON text; cast when a product is created
    image_urls           text[] not null,
    unit                 text not null,
    price_fen            bigint not null,
    reference_price_fen  bigint not null,
    reference_source_url text not null,
    reference_date       date not null,
    stock                integer not null,
    min_order_qty        integer not null,
    warranty_months      integer not null,
    policy_tags          text[] not null,
    delivery_key         text not null,  -- 'region:days;...' in region order, to compare
    -- the same keys as products.brand_key and products.model_key
    brand_key            text generated always as (lower(regexp_replace(brand, '\\s+', '', 'g'))) stored,
    model_key            text generated always as (lower(regexp_replace(model, '\\s+', '', 'g'))) stored,
    -- a new id, or the existing product's
    product_id           bigint not null default nextval({product_sequence}::oid::regclass),
    product_new          boolean not null default true,
    -- the fields of the row that a matched product kept (its own values differ)
    unapplied            text[] not null default '{{}}',
    -- a new id, or the existing offer's
    offer_id             bigint not null default nextval({offer_sequence}::oid::regclass),
    action               text not null default 'created',  -- or updated, unchanged
    changed              text[] not null default '{{}}',     -- the offer fields that differ
    old_product_id       bigint,
    old_price_fen        bigint,
    old_reference_fen    bigint,
    old_status           text,
    new_status           text not null default 'draft',
    review_region_code   text,
    before               jsonb
) on commit drop;
create index on import_rows (supplier_sku);
create index on import_rows (product_id);
create temp table import_delivery (
    row_no        integer not null,
    region_code   text not null,
    delivery_days integer not null
) on commit drop;
-- the product of every row of earlier batches that was not a repeat, with its row
create temp table import_seen (
    product_id bigint primary key,
    first_row  integer not null
) on commit drop;
-- the product an earlier batch moved an offer away from, and the offer's SKU
create temp table import_moved (
    product_id   bigint not null,
    supplier_sku text not null
) on commit drop;
"""


def _offer_json(delivery: str) -> str:
    """An offer as its audit events show it (``o`` is the offer), with its delivery regions
    from ``delivery`` (a JSON array)."""
    return f"""jsonb_build_object(
    'id', o.id, 'product_id', o.product_id, 'supplier_id', o.supplier_id,
    'supplier_sku', o.supplier_sku, 'status', o.status, 'status_reason', o.status_reason,
    'price_fen', o.price_fen, 'reference_price_fen', o.reference_price_fen,
    'reference_source_url', o.reference_source_url, 'reference_date', o.reference_date,
    'stock', o.stock, 'min_order_qty', o.min_order_qty, 'warranty_months', o.warranty_months,
    'policy_tags', to_jsonb(o.policy_tags), 'review_region_code', o.review_region_code,
    'version', o.version, 'delivery', {delivery})"""


_DELIVERY_JSON = """jsonb_agg(jsonb_build_object('region_code', d.region_code,
                                          'delivery_days', d.delivery_days)
                       order by d.region_code)"""

# The shared fields of a row that an existing product ``p`` keeps: a supplier's import does not
# rewrite a product other suppliers offer too. Brand and model matched without case or white
# space, so a spelling that differs only so is not applied either; empty specs and no images
# mean the row gives none. (emall.imports.outcomes explains each field to the supplier.)
_UNAPPLIED = """array_remove(array[
    case when btrim(p.brand) <> t.brand then 'brand' end,
    case when btrim(p.model) <> t.model then 'model' end,
    case when btrim(p.title) <> t.title then 'title' end,
    case when t.specs <> '{}' and p.specs <> t.specs::jsonb then 'specs' end,
    case when cardinality(t.image_urls) > 0 and p.image_urls <> t.image_urls then 'image_urls' end,
    case when p.unit <> t.unit then 'unit' end
]::text[], null)"""

# Rows whose product exists take its id (and note what of theirs it keeps); the others keep the
# new id they came with.
_EXISTING_PRODUCTS = f"""
update import_rows t set product_id = p.id, product_new = false, unapplied = {_UNAPPLIED}
from products p
where p.category_code = t.category_code and p.brand_key = t.brand_key and p.model_key = t.model_key
"""

# The products created, in row order, as their ``product.created`` events show them.
_CREATE_PRODUCTS = """
with created as (
    insert into products (id, category_code, brand, model, title, specs, image_urls, unit,
                          created_by)
    overriding system value
    select product_id, category_code, brand, model, title, specs::jsonb, image_urls, unit, $1
    from import_rows
    where product_new
    order by row_no
    on conflict (category_code, brand_key, model_key) do nothing
    returning id, category_code, brand, model, title, specs, image_urls, unit
)
select c.id::text as entity_id,
       jsonb_build_object('id', c.id, 'category_code', c.category_code, 'brand', c.brand,
                          'model', c.model, 'title', c.title, 'specs', c.specs,
                          'image_urls', to_jsonb(c.image_urls), 'unit', c.unit,
                          'import_job_id', $2::bigint)::text as after
from created c join import_rows t on t.product_id = c.id
order by t.row_no
"""

# A product row that did not insert (another row of the file, or a concurrent import, created
# the same product first) takes the id of the product that did, and is matched to it.
_REMAP_PRODUCTS = f"""
update import_rows t set product_id = p.id, product_new = false, unapplied = {_UNAPPLIED}
from products p
where t.product_new and p.id <> t.product_id
  and p.category_code = t.category_code and p.brand_key = t.brand_key and p.model_key = t.model_key
"""

# Lock the supplier's offers that the file names, then compare each with its row.
_LOCK_OFFERS = """
select count(*) from (
    select 1 from offers o join import_rows t on t.supplier_sku = o.supplier_sku
    where o.supplier_id = $1
    for update of o
) locked
"""

_MATCH_OFFERS = """
update import_rows t
set offer_id = m.id,
    old_product_id = m.product_id,
    old_price_fen = m.price_fen,
    old_reference_fen = m.reference_price_fen,
    old_status = m.status,
    new_status = m.status,
    review_region_code = m.review_region_code,
    changed = m.changed,
    action = case when cardinality(m.changed) > 0 then 'updated' else 'unchanged' end
from (
    select r.row_no, o.id, o.product_id, o.price_fen, o.reference_price_fen, o.status,
           o.review_region_code,
           array_remove(array[
               case when o.product_id <> r.product_id then 'product_id' end,
               case when o.price_fen <> r.price_fen then 'price_fen' end,
               case when o.reference_price_fen <> r.reference_price_fen
                    then 'reference_price_fen' end,
               case when o.reference_source_url <> r.reference_source_url
                    then 'reference_source_url' end,
               case when o.reference_date <> r.reference_date then 'reference_date' end,
               case when o.stock <> r.stock then 'stock' end,
               case when o.min_order_qty <> r.min_order_qty then 'min_order_qty' end,
               case when o.warranty_months <> r.warranty_months then 'warranty_months' end,
               case when not (o.policy_tags @> r.policy_tags and o.policy_tags <@ r.policy_tags)
                    then 'policy_tags' end,
               case when r.delivery_key is distinct from (
                       select string_agg(d.region_code || ':' || d.delivery_days, ';'
                                         order by d.region_code collate "C")
                       from offer_delivery d where d.offer_id = o.id)
                    then 'delivery' end
           ]::text[], null) as changed
    from offers o join import_rows r on r.supplier_sku = o.supplier_sku
    where o.supplier_id = $1
) m
where m.row_no = t.row_no
"""

# One offer per supplier and product: a later row for a product already in the file (in an
# earlier batch, or in this one), or a product the supplier offered under another SKU before the
# import (an offer untouched so far, or one an earlier batch moved away), cannot be saved.
_DROP_SEEN_PRODUCTS = """
delete from import_rows t
using import_seen s
where s.product_id = t.product_id
returning t.row_no, s.first_row
"""

_DROP_REPEATED_PRODUCTS = """
delete from import_rows t
using (select product_id, min(row_no) as first_row from import_rows group by product_id) f
where f.product_id = t.product_id and t.row_no > f.first_row
returning t.row_no, f.first_row
"""

_DROP_PRODUCTS_OFFERED_ELSEWHERE = """
delete from import_rows t
using offers o
where o.supplier_id = $1 and o.product_id = t.product_id and o.supplier_sku <> t.supplier_sku
returning t.row_no, o.supplier_sku as other_sku
"""

_DROP_PRODUCTS_MOVED_AWAY = """
delete from import_rows t
using import_moved m
where m.product_id = t.product_id and m.supplier_sku <> t.supplier_sku
returning t.row_no, m.supplier_sku as other_sku
"""

_REMEMBER_SEEN = (
    "insert into import_seen (product_id, first_row) select product_id, row_no from import_rows"
)

_REMEMBER_MOVED = """
insert into import_moved (product_id, supplier_sku)
select old_product_id, supplier_sku from import_rows
where action = 'updated' and 'product_id' = any(changed)
"""

# The delivery regions an offer has now.
_STORED_DELIVERY = f"""coalesce(
    (select {_DELIVERY_JSON} from offer_delivery d where d.offer_id = o.id), '[]'::jsonb)"""

_BEFORE = f"""
update import_rows t set before = {_offer_json(_STORED_DELIVERY)}
from offers o
where t.action = 'updated' and o.id = t.offer_id
"""

_RISES = """
select t.offer_id, t.old_price_fen, t.price_fen, t.review_region_code
from import_rows t
where t.action = 'updated' and t.old_status = 'listed' and t.price_fen > t.old_price_fen
"""

# LOWEST_IN_WINDOW_SQL (emall.listings.prices) for many offers at once.
_LOWEST_IN_WINDOWS = """
select u.offer_id,
       (select min(h.price_fen) from offer_price_history h
        where h.offer_id = u.offer_id and h.changed_at >= now() - make_interval(days => u.days))
           as lowest
from unnest($1::bigint[], $2::integer[]) as u(offer_id, days)
"""

_INSERT_OFFERS = """
insert into offers (id, product_id, supplier_id, supplier_sku, status, price_fen,
                    reference_price_fen, reference_source_url, reference_date, stock,
                    min_order_qty, warranty_months, policy_tags)
overriding system value
select offer_id, product_id, $1, supplier_sku, 'draft', price_fen, reference_price_fen,
       reference_source_url, reference_date, stock, min_order_qty, warranty_months, policy_tags
from import_rows where action = 'created'
order by row_no
"""

_UPDATE_OFFERS = """
update offers o set
    product_id = t.product_id,
    price_fen = t.price_fen,
    reference_price_fen = t.reference_price_fen,
    reference_source_url = t.reference_source_url,
    reference_date = t.reference_date,
    stock = t.stock,
    min_order_qty = t.min_order_qty,
    warranty_months = t.warranty_months,
    policy_tags = t.policy_tags,
    status = t.new_status,
    status_reason = case when t.new_status <> o.status then $1 else o.status_reason end,
    submitted_at = case when t.new_status <> o.status then now() else o.submitted_at end,
    version = o.version + 1,
    updated_at = now()
from import_rows t
where t.action = 'updated' and o.id = t.offer_id
"""

_CLEAR_DELIVERY = """
delete from offer_delivery d
using import_rows t
where t.action = 'updated' and 'delivery' = any(t.changed) and d.offer_id = t.offer_id
"""

_INSERT_DELIVERY = """
insert into offer_delivery (offer_id, region_code, delivery_days)
select t.offer_id, d.region_code, d.delivery_days
from import_delivery d join import_rows t on t.row_no = d.row_no
where t.action = 'created' or (t.action = 'updated' and 'delivery' = any(t.changed))
"""

_PRICE_HISTORY = """
insert into offer_price_history (offer_id, price_fen, reference_price_fen, changed_by)
select offer_id, price_fen, reference_price_fen, $1
from import_rows
where action = 'created'
   or (action = 'updated'
       and (price_fen <> old_price_fen or reference_price_fen <> old_reference_fen))
order by row_no
"""

# The updated offers that were listed, for their ``offer.changed`` outbox rows.
_OUTBOX = """
select offer_id::text as aggregate_id,
       jsonb_build_object('status', new_status, 'fields', to_jsonb(changed),
                          'import_job_id', $1::bigint)::text as payload
from import_rows
where action = 'updated' and old_status = 'listed'
order by row_no
"""

# After the import an offer delivers where its row says (an unchanged delivery is the same set),
# so the events take the delivery from the file rather than reading it back offer by offer.
_AUDIT_OFFERS = f"""
select o.id::text as entity_id, coalesce(o.review_region_code, $1) as region_code,
       t.before::text as before,
       ({_offer_json("coalesce(f.delivery, '[]'::jsonb)")}
           || jsonb_build_object('import_job_id', $2::bigint, 'row', t.row_no,
                                 'result', t.action, 'changed', to_jsonb(t.changed)))::text
           as after
from import_rows t
join offers o on o.id = t.offer_id
left join (select d.row_no, {_DELIVERY_JSON} as delivery from import_delivery d group by d.row_no)
    as f on f.row_no = t.row_no
where t.action in ('created', 'updated')
order by t.row_no
"""

# What the batch did with each of its rows, for the job's result (emall.imports.outcomes).
_RECORD_ROWS = """
insert into import_job_rows (job_id, row_no, product, product_id, offer, offer_id, offer_status,
                             unapplied)
select $1, row_no, case when product_new then 'created' else 'matched' end, product_id, action,
       offer_id, new_status, unapplied
from import_rows
"""

_COUNTS = """
select count(*) filter (where action = 'created') as created,
       count(*) filter (where product_new) as created_products,
       count(*) filter (where not product_new) as matched_products,
       count(*) filter (where action = 'updated') as updated,
       count(*) filter (where action = 'unchanged') as unchanged,
       count(*) filter (where action = 'updated' and old_status = 'listed'
                        and new_status = 'submitted') as resubmitted
from import_rows
"""


@dataclass
class SaveResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    resubmitted: int = 0  # listed offers sent back to review by a price rise
    created_products: int = 0  # saved rows whose product the import created
    matched_products: int = 0  # saved rows whose product existed
    errors: list[RowError] = field(default_factory=list)  # rows that could not be saved


_specs_encoder = msgspec.json.Encoder(order="sorted")


@dataclass
class Staged:
    """A batch of checked rows as the staging tables take them: ``import_rows`` records (in
    ``_ROW_COLUMNS`` order, without the ids, which the table draws) and ``import_delivery``
    records. They hold only strings, numbers, dates and tuples of strings, so that the garbage
    collector stops tracking them at its first look and a batch waiting to be saved costs it
    nothing."""

    rows: list[tuple[object, ...]] = field(default_factory=list)
    deliveries: list[tuple[int, str, int]] = field(default_factory=list)

    def add(self, number: int, row: OfferRow) -> None:
        """Stage one checked row (rows in file order). Pure CPU work: safe in a thread while
        the event loop saves an earlier batch."""
        by_region = sorted((d.region_code, d.delivery_days) for d in row.delivery)
        self.rows.append(
            (
                number,
                row.supplier_sku,
                row.category_code,
                row.brand.strip(),
                row.model.strip(),
                row.title.strip(),
                _specs_encoder.encode(row.specs).decode(),
                tuple(row.image_urls),
                row.unit,
                row.price_fen,
                row.reference_price_fen,
                row.reference_source_url,
                row.reference_date,
                row.stock,
                row.min_order_qty,
                row.warranty_months,
                tuple(sorted(set(row.policy_tags))),
                ";".join(f"{region}:{days}" for region, days in by_region),
            )
        )
        self.deliveries.extend((number, region, days) for region, days in by_region)


def stage(rows: list[tuple[int, OfferRow]]) -> Staged:
    """The staging records of checked rows (``(row number, row)``, in file order)."""
    staged = Staged()
    for number, row in rows:
        staged.add(number, row)
    return staged


class FileSaver:
    """Saves the batches of one file for the actor's supplier, in file order, inside the
    caller's transaction; ``result`` adds up the batches saved so far."""

    def __init__(
        self,
        conn: Connection,
        actor: Principal,
        *,
        job_id: int,
        request_id: str | None = None,
    ) -> None:
        self.conn = conn
        self.actor = actor
        self.job_id = job_id
        self.request_id = request_id
        self.result = SaveResult()
        self._batches = 0
        self._moved = 0  # rows in import_moved
        self._rules: dict[str | None, PriceRule] = {}

    async def save(self, batch: Staged) -> None:
        """Apply one batch (its rows after those of every earlier batch)."""
        conn = self.conn
        assert conn.is_in_transaction(), "FileSaver must run inside the caller's transaction"
        if not batch.rows:
            return
        supplier_id = self.actor.organisation_id
        if self._batches == 0:
            await self._start()
        else:
            await conn.execute("truncate import_rows, import_delivery")
        await conn.copy_records_to_table("import_rows", records=batch.rows, columns=_ROW_COLUMNS)
        await conn.copy_records_to_table(
            "import_delivery",
            records=batch.deliveries,
            columns=("row_no", "region_code", "delivery_days"),
        )
        if self._batches == 0:
            # later batches are alike: the statistics of the first serve them all
            await conn.execute("analyze import_rows")
        self._batches += 1

        existing = _count(await conn.execute(_EXISTING_PRODUCTS))
        created = await conn.fetch(_CREATE_PRODUCTS, supplier_id, self.job_id)
        if len(created) < len(batch.rows) - existing:
            await conn.execute(_REMAP_PRODUCTS)
        # the events' JSON as the statements built it (msgspec.Raw): Python only passes it on
        events = [
            AuditEvent(
                action="product.created",
                entity_type="product",
                entity_id=r["entity_id"],
                actor_user_id=self.actor.user_id,
                actor_organisation_id=supplier_id,
                after=msgspec.Raw(r["after"]),
                request_id=self.request_id,
            )
            for r in created
        ]
        # the offers that the batch names; with none (all new SKUs) no row can update an offer,
        # and the steps for updates are left out
        matched = await conn.fetchval(_LOCK_OFFERS, supplier_id)
        if matched:
            await conn.execute(_MATCH_OFFERS, supplier_id)

        errors = await self._drop_unsavable()
        if matched:
            await conn.execute(_BEFORE)
            await self._send_rises_to_review()

        await conn.execute(_INSERT_OFFERS, supplier_id)
        if matched:
            await conn.execute(_UPDATE_OFFERS, RISE_REASON)
            await conn.execute(_CLEAR_DELIVERY)
        await conn.execute(_INSERT_DELIVERY)
        await conn.execute(_PRICE_HISTORY, self.actor.user_id)
        messages = [
            OutboxMessage(
                topic="offer.changed",
                aggregate_type="offer",
                aggregate_id=r["aggregate_id"],
                payload=msgspec.Raw(r["payload"]),
            )
            for r in (await conn.fetch(_OUTBOX, self.job_id) if matched else [])
        ]
        events.extend(
            AuditEvent(
                action="offer.imported",
                entity_type="offer",
                entity_id=r["entity_id"],
                actor_user_id=self.actor.user_id,
                actor_organisation_id=supplier_id,
                region_code=r["region_code"],
                before=None if r["before"] is None else msgspec.Raw(r["before"]),
                after=msgspec.Raw(r["after"]),
                request_id=self.request_id,
            )
            for r in await conn.fetch(_AUDIT_OFFERS, self.actor.region_code, self.job_id)
        )
        await record(conn, events, messages)
        await conn.execute(_RECORD_ROWS, self.job_id)
        if matched:
            self._moved += _count(await conn.execute(_REMEMBER_MOVED))
        counts = await conn.fetchrow(_COUNTS)
        assert counts is not None
        result = self.result
        result.created += counts["created"]
        result.updated += counts["updated"]
        result.unchanged += counts["unchanged"]
        result.resubmitted += counts["resubmitted"]
        result.created_products += counts["created_products"]
        result.matched_products += counts["matched_products"]
        result.errors.extend(errors)

    async def _start(self) -> None:
        # One import per supplier at a time: a second one waits for this transaction.
        sequences = await self.conn.fetchrow(
            """
            select pg_advisory_xact_lock(hashtextextended('emall.import:' || $1::bigint, 0)),
                   pg_get_serial_sequence('products', 'id')::regclass::oid as products,
                   pg_get_serial_sequence('offers', 'id')::regclass::oid as offers
            """,
            self.actor.organisation_id,
        )
        assert sequences is not None
        await self.conn.execute(
            _create_temp_tables(int(sequences["products"]), int(sequences["offers"]))
        )

    async def _drop_unsavable(self) -> list[RowError]:
        """Take the rows that cannot be saved out of the batch, as row errors."""
        conn = self.conn
        repeated = await conn.fetch(_DROP_SEEN_PRODUCTS) if self._batches > 1 else []
        repeated += await conn.fetch(_DROP_REPEATED_PRODUCTS)
        errors = [
            RowError(
                row=r["row_no"],
                field="model",
                reason=f"同一商品（品目、品牌、型号）在文件中重复，首次出现在第 {r['first_row']} 行；"
                f"每个商品只能有一个报价 (the same product appears in row {r['first_row']}; "
                f"a supplier has one offer per product)",
            )
            for r in repeated
        ]
        await conn.execute(_REMEMBER_SEEN)
        elsewhere = await conn.fetch(_DROP_PRODUCTS_OFFERED_ELSEWHERE, self.actor.organisation_id)
        if self._moved:
            elsewhere += await conn.fetch(_DROP_PRODUCTS_MOVED_AWAY)
        errors.extend(
            RowError(
                row=r["row_no"],
                field="model",
                reason=f"已用货号 {r['other_sku']} 为该商品报价，每个商品只能有一个报价 "
                f"(you already offer this product under supplier_sku {r['other_sku']!r})",
            )
            for r in elsewhere
        )
        if errors:
            await conn.execute(
                "delete from import_delivery d where not exists "
                "(select 1 from import_rows t where t.row_no = d.row_no)"
            )
        return sorted(errors, key=lambda e: e.row)

    async def _send_rises_to_review(self) -> None:
        """Listed offers whose new price rises beyond their region's rule go back to review."""
        conn = self.conn
        rises = await conn.fetch(_RISES)
        if not rises:
            return
        rules = self._rules  # read once per file, as the first batch that needs them finds them
        for region in {r["review_region_code"] for r in rises} - rules.keys():
            rules[region] = await price_rule(conn, region)
        lowest = {
            r["offer_id"]: r["lowest"]
            for r in await conn.fetch(
                _LOWEST_IN_WINDOWS,
                [r["offer_id"] for r in rises],
                [rules[r["review_region_code"]].rise_window_days for r in rises],
            )
        }
        to_review = [
            r["offer_id"]
            for r in rises
            if exceeds_rise(
                r["price_fen"],
                min(lowest[r["offer_id"]] or r["old_price_fen"], r["old_price_fen"]),
                rules[r["review_region_code"]].max_rise_bp,
            )
        ]
        if to_review:
            await conn.execute(
                "update import_rows set new_status = 'submitted' "
                "where offer_id = any($1::bigint[])",
                to_review,
            )


def _count(status: str) -> int:
    """The row count of a command status such as ``INSERT 0 12``."""
    return int(status.rsplit(" ", 1)[-1])


async def save_rows(
    conn: Connection,
    actor: Principal,
    rows: list[tuple[int, OfferRow]],
    *,
    job_id: int,
    request_id: str | None = None,
) -> SaveResult:
    """Apply the valid rows of one file for the actor's supplier as one batch; call inside a
    transaction."""
    saver = FileSaver(conn, actor, job_id=job_id, request_id=request_id)
    await saver.save(stage(rows))
    return saver.result
