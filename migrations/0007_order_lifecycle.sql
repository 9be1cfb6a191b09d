-- Ordering, part 3: what the order lifecycle records (acceptance, payment), and evaluations.

alter table orders
    add column status_reason    text,
    add column approved_by      bigint,
    add column approved_at      timestamptz,
    add column confirmed_at     timestamptz,
    add column shipped_at       timestamptz,
    add column delivered_at     timestamptz,
    add column accepted_at      timestamptz,
    add column accepted_fen     bigint,
    add column defects          text,
    add column payment_due_date date,
    add column settled_at       timestamptz,
    add column paid_fen         bigint,
    add column paid_on          date,
    add column payment_reference text,
    add constraint orders_approved_by_fk foreign key (approved_by) references users (id),
    add constraint orders_accepted_check check (accepted_fen is null or accepted_fen between 0 and total_fen),
    add constraint orders_paid_check check (paid_fen is null or paid_fen = accepted_fen);

-- The buyer's rating of the supplier after acceptance, once per order.
create table order_evaluations (
    order_id    bigint not null,
    supplier_id bigint not null,
    quality     smallint not null,
    delivery    smallint not null,
    service     smallint not null,
    comment     text not null default '',
    created_by  bigint not null,
    created_at  timestamptz not null default now(),
    constraint order_evaluations_pk primary key (order_id),
    constraint order_evaluations_order_fk foreign key (order_id) references orders (id),
    constraint order_evaluations_supplier_fk foreign key (supplier_id) references organisations (id),
    constraint order_evaluations_created_by_fk foreign key (created_by) references users (id),
    constraint order_evaluations_scores_check
        check (quality between 1 and 5 and delivery between 1 and 5 and service between 1 and 5)
);
create index order_evaluations_supplier_idx on order_evaluations (supplier_id);
