"""Product search on Meilisearch."""
