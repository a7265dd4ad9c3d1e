"""The reproduction of the paper's tables and figures, built on the library in ``haste``.

Experiment runners and their row reuse (:mod:`.experiments`), the result cache
(:mod:`.result_cache`), provenance (:mod:`.provenance`), the stand-ins' training
(:mod:`.train`), the paper's known numbers (:mod:`.paper`), table assembly (:mod:`.tables`),
figures (:mod:`.plotting`), synthetic test data (:mod:`.synthetic`) and the command line
(:mod:`.cli`). The library (``haste`` outside this subpackage) never imports it.
"""
