"""Name -> object registries with helpful lookup errors."""
from __future__ import annotations

from typing import Any, Callable, Iterable

from ..names import did_you_mean
from .errors import UserError, shown


class RegistryKeyError(UserError, KeyError):
    """A registry lookup or registration failed; ``str()`` gives the plain message.

    A ``UserError``: an unknown name almost always comes from a config value (e.g. a typo in
    ``TRAINER.NAME``).
    """

    def __str__(self) -> str:  # KeyError would otherwise repr-quote the message
        return str(self.args[0]) if self.args else ""


def check_availability(requested: str, available: Iterable[str]) -> None:
    """Raise ``ValueError`` (with a did-you-mean hint) if ``requested`` is not in ``available``."""
    available = list(available)
    if requested not in available:
        raise ValueError(f"The requested one is expected to belong to {available}, but got "
                         f"[{shown(requested)}]{_did_you_mean(requested, available)}")


def _did_you_mean(requested: str, available: list[str]) -> str:
    return did_you_mean(str(requested), available, n=1, cutoff=0.4)


class Registry:
    """Maps names to classes/functions, e.g. ``TRAINER_REGISTRY``.

    Register with the decorator ``@REG.register()`` (name = ``obj.__name__``) or directly with
    ``REG.register(obj)``; look up with ``REG.get(name)``.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._obj_map: dict[str, Any] = {}

    def _do_register(self, name: str, obj: Any, force: bool = False) -> None:
        if name in self._obj_map and not force:
            raise RegistryKeyError(
                f"An object named {name!r} was already registered in the {self._name!r} registry")
        self._obj_map[name] = obj

    def register(self, obj: Any = None, force: bool = False) -> Any:
        """Register ``obj`` under ``obj.__name__``; without ``obj`` return a decorator."""
        if obj is None:
            def wrapper(fn_or_class: Callable) -> Callable:
                self._do_register(fn_or_class.__name__, fn_or_class, force=force)
                return fn_or_class
            return wrapper
        self._do_register(obj.__name__, obj, force=force)
        return obj

    def get(self, name: str) -> Any:
        """Return the object registered as ``name``; ``RegistryKeyError`` with a hint otherwise."""
        if name not in self._obj_map:
            available = self.registered_names()
            raise RegistryKeyError(
                f"Object name {shown(name)} does not exist in the {self._name!r} registry; "
                f"available: {available}{_did_you_mean(name, available)}")
        return self._obj_map[name]

    def build(self, name: str, cfg: Any, **kwargs: Any) -> Any:
        """``self.get(name)(cfg, **kwargs)``, announced as ``Loading <registry>: <name>`` when
        ``cfg.VERBOSE``."""
        cls = self.get(name)
        if cfg.VERBOSE:
            print(f"Loading {self._name.lower()}: {name}")
        return cls(cfg, **kwargs)

    def registered_names(self) -> list[str]:
        return list(self._obj_map.keys())

    def __contains__(self, name: str) -> bool:
        return name in self._obj_map

    def __repr__(self) -> str:
        return f"Registry(name={self._name!r}, items={self.registered_names()})"
