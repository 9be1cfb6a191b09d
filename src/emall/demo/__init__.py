"""The demo: the Neijiang (511000) and Zigong (510300) partnership's parties and users
(``parties``), the generated demo catalogue (``generator``, ``catalogue``).

Outside the library's domains: nothing in them imports this package, and a city embedding
emall never loads it. ``emall seed demo``, ``emall serve --demo``, the tests and the
benchmarks do.
"""
