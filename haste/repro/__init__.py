"""The reproduction of the paper's tables and figures, built on the library in ``haste``.

Experiment runners (:mod:`.experiments`), result rows and their reuse (:mod:`.result_rows`), what
the tables report of them (:mod:`.analysis`), the controls (:mod:`.controls`), devices and shards
(:mod:`.devices`), the result cache (:mod:`.result_cache`), provenance (:mod:`.provenance`), the
stand-ins' training (:mod:`.train`), the paper's known numbers (:mod:`.paper`), table assembly
(:mod:`.tables`), figures (:mod:`.plotting`), synthetic test data (:mod:`.synthetic`) and the
command line (:mod:`.cli`). The library (``haste`` outside this subpackage) never imports it.
"""
