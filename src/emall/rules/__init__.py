"""City rules (限额标准 and more): per region, effective-dated, versioned, never rewritten."""
