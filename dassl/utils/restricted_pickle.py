"""An unpickler that never executes pickled code, for checkpoints written by other programs.

Checkpoints written by the original Dassl.pytorch trainers embed pickled objects of its classes
(a warmup scheduler holding a cosine scheduler holding an SGD optimizer). PyTorch's
`weights_only=True` loader refuses those, and a plain unpickler would import (and could execute)
whatever the file names. `restricted_pickle` (a `pickle_module` for `torch.load`) rebuilds
tensors, storages, dtypes and plain containers for real; every other global becomes an inert
stub (`InertObject`) that stores its arguments and state and runs no code.
`dassl.utils.torchtools.read_checkpoint` uses it as the fallback of weights-only loading.
"""
from __future__ import annotations

import collections
import pickle
import types
from typing import Any

import numpy as np
import torch

__all__ = ["InertObject", "inert_state", "RestrictedUnpickler", "restricted_pickle"]

# Globals rebuilt for real: tensor/parameter reconstruction helpers and plain containers.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch._tensor", "_rebuild_from_type_v2"): torch._tensor._rebuild_from_type_v2,
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
}
for _name in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool",
              "str", "bytes", "bytearray", "slice"):
    _ALLOWED_GLOBALS[("builtins", _name)] = getattr(__import__("builtins"), _name)
_ALLOWED_GLOBALS[("__builtin__", "set")] = set  # Python 2 era pickles
# NumPy scalars (e.g. a `val_result` computed with SciPy) are rebuilt from raw bytes.
try:  # NumPy >= 2 moved the module; pickles name whichever wrote them
    from numpy._core.multiarray import scalar as _np_scalar
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import scalar as _np_scalar
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED_GLOBALS[(_module, "scalar")] = _np_scalar
_ALLOWED_GLOBALS[("numpy", "dtype")] = np.dtype
# Precomputed, so that names from a file never reach `getattr(torch, ...)` (lazy imports).
_TORCH_DTYPES = {name: value for name, value in vars(torch).items()
                 if isinstance(value, torch.dtype)}


class InertObject:
    """Placeholder for a pickled object of a non-allowlisted class; executes nothing.

    Construction arguments land in `_inert_args`/`_inert_kwargs`, pickled state in
    `_inert_state` (for `__dict__` states also readable as attributes via `inert_state`).
    """

    _inert_qualname = "InertObject"

    def __new__(cls, *args: Any, **kwargs: Any) -> "InertObject":
        obj = super().__new__(cls)
        obj.__dict__["_inert_args"] = args
        obj.__dict__["_inert_kwargs"] = kwargs
        obj.__dict__["_inert_state"] = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_inert_state"] = state

    def __call__(self, *args: Any, **kwargs: Any) -> "InertObject":
        # A stub standing in for a pickled function may be "called" by REDUCE; stay inert.
        return InertObject(*args, **kwargs)

    # pickle's APPEND/SETITEM opcodes on unknown containers: record, do nothing else.
    def append(self, item: Any) -> None:
        self.__dict__.setdefault("_inert_items", []).append(item)

    def extend(self, items: Any) -> None:
        self.__dict__.setdefault("_inert_items", []).extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("_inert_mapping", {})[key] = value

    def __repr__(self) -> str:
        return f"<inert {self._inert_qualname}>"


def inert_state(obj: Any) -> Any:
    """The pickled state recorded by an `InertObject` (None for anything else)."""
    return obj.__dict__.get("_inert_state") if isinstance(obj, InertObject) else None


_STUBS: dict[tuple[str, str], type] = {}


def _stub_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _STUBS:
        qualname = f"{module}.{name}"
        _STUBS[key] = type(name, (InertObject,), {"_inert_qualname": qualname,
                                                  "__module__": __name__})
    return _STUBS[key]


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose `find_class` only resolves allowlisted globals; the rest become stubs."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is not None:
            return allowed
        if module == "torch" and name in _TORCH_DTYPES:
            return _TORCH_DTYPES[name]
        return _stub_class(module, name)


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return RestrictedUnpickler(file, **kwargs).load()


# `torch.load(pickle_module=...)` needs a module-like object with `Unpickler`, `load` and
# `__name__` (it subclasses `Unpickler` and keeps calling our `find_class`).
restricted_pickle = types.ModuleType("restricted_pickle")
restricted_pickle.Unpickler = RestrictedUnpickler
restricted_pickle.load = _restricted_load
restricted_pickle.UnpicklingError = pickle.UnpicklingError
