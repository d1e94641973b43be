"""Compact, API-compatible subset of Dassl.pytorch used by CoOp-style trainers.

Module paths, names, config keys and defaults follow Dassl.pytorch 0.6.3 so that CoOp/Dassl
users recognise the trainer and yaml files; see ``/work/brief/DASSL_API.md`` for the summary.
"""

__version__ = "0.6.3+compact"
