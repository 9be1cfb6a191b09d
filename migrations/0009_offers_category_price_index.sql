-- Listed offers of a category in price order, straight from one index (价格监测, price statistics).
--
-- Each offer carries its product's category (``offers.category_code``), kept right by the
-- database alone: a trigger fills it from products whenever an offer is inserted (INSERT, COPY,
-- INSERT ... SELECT: writers never name it) or its product changes, and ignores any value a
-- writer gives; a product whose category changes takes its offers along. The partial index then
-- serves "the listed offers of category X ordered by price" (a count and an order statistic are
-- index-only scans over the category alone), independent of the catalogue's size.

alter table offers add column category_code text;

update offers o set category_code = p.category_code
from products p
where p.id = o.product_id;

-- Not declared NOT NULL: the trigger always fills it, except for an offer whose product does not
-- exist, which offers_product_fk rejects anyway (and with its own error, which NOT NULL would
-- pre-empt).

create function offers_fill_category_code() returns trigger language plpgsql as $$
begin
    new.category_code := (select p.category_code from products p where p.id = new.product_id);
    return new;
end
$$;

create trigger offers_category_code_before_write
    before insert or update of product_id, category_code on offers
    for each row execute function offers_fill_category_code();

create function products_carry_category_code() returns trigger language plpgsql as $$
begin
    -- the offers' trigger reads the product's new category (visible to an AFTER trigger)
    update offers set category_code = new.category_code where product_id = new.id;
    return null;
end
$$;

create trigger products_category_code_after_update
    after update of category_code on products
    for each row when (old.category_code is distinct from new.category_code)
    execute function products_carry_category_code();

create index offers_listed_category_price_idx on offers (category_code, price_fen, id)
    where status = 'listed';
