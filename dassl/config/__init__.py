"""Configuration: Dassl defaults (yacs), the one reader of config yamls (``_BASE_`` files first)
and a merge helper."""
from __future__ import annotations

import ast
import os
from typing import Iterable, Optional, Sequence

import yaml
from yacs.config import CfgNode

from ..names import did_you_mean, shown
from .defaults import _C as cfg_default


def get_cfg_default() -> CfgNode:
    """A fresh, mutable copy of the default configuration."""
    return cfg_default.clone()


def _leaf_keys(node: CfgNode, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        if isinstance(value, CfgNode):
            keys.extend(_leaf_keys(value, prefix + key + "."))
        else:
            keys.append(prefix + key)
    return keys


def _check_keys_exist(cfg: CfgNode, keys: Iterable[str], where: str = "") -> None:
    """Raise ``KeyError`` (with a did-you-mean hint, then ``where``, e.g. " in config file
    F") for keys absent from ``cfg``.

    yacs only asserts this in ``merge_from_list``, which ``python -O`` would skip.
    """
    valid = set(_leaf_keys(cfg))
    for key in keys:
        if key not in valid:
            raise KeyError(f"Non-existent config key: {shown(key)}"
                           f"{did_you_mean(key, sorted(valid), n=1)}{where}")


def _unknown_file_keys(cfg: CfgNode, loaded: CfgNode, prefix: str = "") -> list[str]:
    """Full names of the keys of a loaded yaml that ``cfg`` does not declare (a subtree that
    ``cfg`` allows new keys in is not looked into)."""
    unknown = []
    for key, value in loaded.items():
        if key not in cfg:
            unknown.append(prefix + key)
        elif (isinstance(value, CfgNode) and isinstance(cfg[key], CfgNode)
              and not cfg[key].is_new_allowed()):
            unknown.extend(_unknown_file_keys(cfg[key], value, f"{prefix}{key}."))
    return unknown


def _lookup(cfg: CfgNode, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole_numbers_as_floats(cfg: CfgNode, opts: Sequence[str]) -> list[str]:
    """``opts`` with a whole number given for a float key written as a float (``0`` ->
    ``0.0``), which yacs would otherwise reject as a type mismatch."""
    out = list(opts)
    for i in range(0, len(out), 2):
        if not isinstance(_lookup(cfg, out[i]), float):
            continue
        try:
            value = ast.literal_eval(str(out[i + 1]))
        except (ValueError, SyntaxError):
            continue
        if _is_int(value):
            out[i + 1] = repr(float(value))
    return out


def _coerce_file_numbers(cfg: CfgNode, loaded: CfgNode) -> None:
    """In a loaded yaml, turn whole numbers given for float keys of ``cfg`` into floats."""
    for key, value in loaded.items():
        if key not in cfg:
            continue
        if isinstance(value, CfgNode) and isinstance(cfg[key], CfgNode):
            _coerce_file_numbers(cfg[key], value)
        elif isinstance(cfg[key], float) and _is_int(value):
            loaded[key] = float(value)


CONFIG_SUFFIXES = (".yaml", ".yml")


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """Where and why yaml refused a text, on one line: `` at line L, column C: problem
    (context)`` (1-based; no position when yaml gives none; the context is yaml's, e.g. "while
    parsing a flow sequence")."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    during = getattr(exc, "context", None)
    return f"{where}: {problem}{f' ({during})' if during else ''}"


BASE_KEY = "_BASE_"


def _read_yaml_mapping(path: str, what: str = "config file") -> dict:
    """The yaml mapping in ``path`` as it is written (its own keys, ``_BASE_`` included).

    Raises ``ValueError`` in one line naming the file (as ``what``) for another file type, text
    that is not UTF-8, invalid yaml (with its line and column) and a document that is not a
    mapping.
    """
    if not path.lower().endswith(CONFIG_SUFFIXES):
        raise ValueError(f"{what} {shown(path)} is not a yaml file (expected a name ending in "
                         f"{' or '.join(CONFIG_SUFFIXES)})")
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except UnicodeDecodeError:
        raise ValueError(f"{what} {shown(path)} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{what} {shown(path)} is not valid yaml"
                         f"{describe_yaml_error(exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{what} {shown(path)} must hold a yaml mapping of config keys (e.g. "
                         f"OPTIM: {{MAX_EPOCH: 10}}), got {type(data).__name__} {data!r:.40}")
    return data


def _merged(base: dict, own: dict) -> dict:
    """``base`` with ``own`` written over it, nested mappings merged key by key."""
    out = dict(base)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            value = _merged(out[key], value)
        out[key] = value
    return out


def _config_error(message: str) -> Exception:
    """A ``ConfigError`` (imported here: ``dassl.utils`` imports torch, which the shell scripts'
    yaml checks need not wait for)."""
    from ..utils.errors import ConfigError

    return ConfigError(message)


_SHOW_CONFIGS = 12  # yaml files of a folder an error message lists


def _missing_config_file(path: str) -> str:
    """Why config file ``path`` cannot be read, with the yaml files beside it that it may have
    meant (a folder, a missing folder, or a mistyped name)."""
    if os.path.isdir(path):
        return f"Config file {shown(path)} is a folder, not a file"
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        kind = "is a file, not a folder" if os.path.exists(folder) else "does not exist"
        return f"Config file not found: {shown(path)} ({shown(folder)} {kind})"
    yamls = sorted(e for e in os.listdir(folder) if e.endswith((".yaml", ".yml")))
    if not yamls:
        return f"Config file not found: {shown(path)} ({shown(folder)} holds no yaml file)"
    listed = ", ".join(shown(y) for y in yamls[:_SHOW_CONFIGS]) + (
        f", ... ({len(yamls)} in all)" if len(yamls) > _SHOW_CONFIGS else "")
    return (f"Config file not found: {shown(path)}{did_you_mean(os.path.basename(path), yamls)}; "
            f"the yaml files of {shown(folder)}: {listed}")


def load_config_file(path: str, what: str = "config file", _chain: tuple[str, ...] = ()) -> dict:
    """The config a yaml file states, as a plain nested dict: its ``_BASE_`` file (a path
    relative to the yaml's own folder, or absolute; as detectron2's configs) loaded first, the
    file's own keys written over it; bases may name bases. ``what`` names ``path`` in errors.

    The one reader of config yamls (``merge_config``, ``scripts/method_args.py``, the sweep).
    Raises ``ConfigError`` naming the files for a base that does not exist or a circle of bases,
    ``FileNotFoundError`` for a missing ``path``, ``ValueError`` as ``_read_yaml_mapping``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(_missing_config_file(path))
    data = _read_yaml_mapping(path, what)
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise _config_error(f"{what} {shown(path)}: {BASE_KEY} must be the path of one yaml file, "
                            f"got {shown(base)}")
    chain = _chain + (os.path.realpath(path),)
    base_path = os.path.join(os.path.dirname(path), os.path.expanduser(base))
    if not os.path.isfile(base_path):
        raise _config_error(f"{what} {shown(path)} names {BASE_KEY} {shown(base)}, but {shown(base_path)} does "
                            "not exist")
    if os.path.realpath(base_path) in chain:
        circle = " -> ".join(chain[chain.index(os.path.realpath(base_path)):] +
                             (os.path.realpath(base_path),))
        raise _config_error(f"config files name each other as {BASE_KEY} in a circle: {circle}")
    return _merged(load_config_file(base_path, _chain=chain), data)


def merge_config(cfg: CfgNode, config_files: Iterable[str] = (),
                 opts: Optional[Sequence[str]] = None) -> CfgNode:
    """Merge yaml files (in order, empty paths skipped) and then ``KEY VALUE`` ``opts`` into ``cfg``.

    This is the yacs part of the merge chain defaults -> dataset yaml -> method yaml -> CLI ->
    opts (CLI flags are applied by the caller between files and opts). Unknown keys raise
    ``KeyError`` (with a did-you-mean hint, and the file name for a key in a file) and values of
    the wrong type ``ValueError`` (yacs; naming the file); a whole number for a float
    key (``DATASET.TEST_RATIO 0``) is taken as that float. Returns ``cfg`` (not frozen).
    """
    for path in config_files:
        if not path:
            continue
        loaded = type(cfg)(load_config_file(path))
        where = f" in config file {shown(path)}"
        if not cfg.is_new_allowed():
            _check_keys_exist(cfg, _unknown_file_keys(cfg, loaded), where)
        _coerce_file_numbers(cfg, loaded)
        try:
            cfg.merge_from_other_cfg(loaded)
        except (KeyError, ValueError) as exc:  # yacs: a type mismatch, a key it refuses
            message = exc.args[0] if len(exc.args) == 1 else str(exc)
            raise type(exc)(f"{message}{where}") from None
    if opts:
        if len(opts) % 2:
            raise ValueError(f"opts must be KEY VALUE pairs, got an odd number of items: {list(opts)}")
        _check_keys_exist(cfg, opts[0::2])
        cfg.merge_from_list(_whole_numbers_as_floats(cfg, opts))
    return cfg


__all__ = ["get_cfg_default", "merge_config", "load_config_file", "BASE_KEY", "describe_yaml_error", "CfgNode"]
