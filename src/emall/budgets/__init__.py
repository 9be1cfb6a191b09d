"""Budget lines (预算指标): what an agency may spend, and the ledger of every movement."""
