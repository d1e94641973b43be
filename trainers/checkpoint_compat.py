"""Old home of the safe checkpoint reader; the code now lives in `dassl.utils.torchtools`
(`read_checkpoint`, `read_module_checkpoint`) and `dassl.utils.restricted_pickle`. These names
stay importable from here for code written against earlier versions."""
from dassl.utils.errors import CheckpointMismatchError
from dassl.utils.restricted_pickle import (InertObject, RestrictedUnpickler, inert_state,
                                           restricted_pickle)
from dassl.utils.torchtools import read_checkpoint as safe_load_checkpoint
from dassl.utils.torchtools import read_module_checkpoint

__all__ = ["CheckpointMismatchError", "InertObject", "RestrictedUnpickler", "inert_state",
           "restricted_pickle", "safe_load_checkpoint", "read_module_checkpoint"]
