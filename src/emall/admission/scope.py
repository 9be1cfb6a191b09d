"""The SQL visibility filter of admission and ban lists (parameters from ``policy.list_scope``)."""

SCOPE_SQL = (
    "($1::boolean or t.supplier_id = $2::bigint or region_chain(t.region_code) && $3::text[])"
)
