"""Identity: users, organisations' principals, bearer tokens and API keys."""
