-- What an import did with each row of its file (issue 15): the product it matched or created,
-- the offer it created, updated or left unchanged (with its id, which an embedding city keeps
-- to find the offer again), the product fields of the row that were not applied to a matched
-- product, or the errors of a refused row. Written with the job's outcome, in the import's
-- transaction; a row of a job that failed is never written.
alter table import_jobs add column created_products integer not null default 0;
alter table import_jobs add column matched_products integer not null default 0;

create table import_job_rows (
    job_id       bigint not null,
    row_no       integer not null,
    product      text,            -- created or matched; null for a refused row
    product_id   bigint,
    offer        text,            -- created, updated or unchanged; null for a refused row
    offer_id     bigint,
    offer_status text,
    unapplied    text[] not null default '{}',  -- fields of the row the matched product kept
    errors       jsonb not null default '[]'::jsonb,
    constraint import_job_rows_pk primary key (job_id, row_no),
    constraint import_job_rows_job_fk foreign key (job_id) references import_jobs (id)
        on delete cascade,
    constraint import_job_rows_product_check check (product in ('created', 'matched')),
    constraint import_job_rows_offer_check check (offer in ('created', 'updated', 'unchanged')),
    constraint import_job_rows_saved_check check ((product is null) = (offer_id is null))
);
