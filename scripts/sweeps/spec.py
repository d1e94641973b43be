"""Sweep specifications and protocol yamls -> the list of planned ``train.py`` runs.

A sweep is the product datasets x variants x protocols x splits x seeds. Its yaml file
(all keys optional; CLI flags of ``scripts/sweep.py`` override them) reads::

    root: ./data                  # DATASET.ROOT
    output: output/sweeps/demo    # OUTPUT/<dataset>/<variant>/<protocol>/splitseedK/seedS
    datasets: [AGIQA]             # entries, see below
    variants: [vit_b16_ep100]     # entries, see below
    protocols: [paper, val]       # configs/protocols/<name>.yaml or a yaml path
    seeds: [1, 2, 3]              # --seed of train.py
    split_seeds: [42]             # DATASET.SPLIT_SEED
    split_indices: []             # DATASET.SPLIT_INDEX K (fixed split files): folders split<K>
    cross: false                  # also test every run on all of every other dataset
    extra_opts: []                # KEY VALUE pairs appended to every run

With ``split_indices`` the splits are the numbered folders of each dataset's
``DATASET.SPLIT_FILE`` (e.g. AGIQA-1K's peer splits) instead of seeds: one run per index, in
``OUTPUT/.../split<K>/seedS``. With ``cross`` every training run of dataset A is then evaluated
on all of every other dataset B (``train.py --eval-only ... DATASET.SPLIT_MODE all``, written to
the run's ``eval/<B>`` folder), giving the A x B table (``CrossRun``).

A dataset or variant entry is a name (``configs/datasets/<name>.yaml``,
``configs/trainers/CLIP_AGIQA/<name>.yaml``, else ``configs/ablations/<name>.yaml``), a yaml path (name = file stem), or a mapping
``{name, config, opts}`` (variants may add ``trainer``, default CLIP_AGIQA); ``opts`` is a
``[KEY, VALUE, ...]`` list (string values are command-line text, passed verbatim, e.g.
``"('normalize',)"``) or a ``{KEY: VALUE}`` mapping (typed yaml values, as in a config file).
A variant entry may also be a folder (e.g. ``configs/ablations``): every yaml in it is one
variant, named by its file stem. A variant whose name ends in ``_<dataset>``, where
``<dataset>`` is the stem of a file in ``configs/datasets`` in lower case (``levels5_agiqa``,
``levels2_aigciqa2023``), holds settings valid for that database only (MOS thresholds, its
prompts) and runs only with the dataset entry of that yaml; the other pairs are left out of the
plan (``SweepSpec.skipped``); a sweep left with no run is an error. A protocol yaml is turned into opts (``yaml_to_opts``) placed after the dataset and variant
opts, and no other opts may set its keys, so every run's evaluation protocol is the named one.
"""
from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from dassl.config import describe_yaml_error, load_config_file
from datasets.scope import config_applies_to
from datasets.scope import database_tag as scope_tag
from dassl.utils.errors import UserError
from dassl.utils.run_dir import IGNORED_KEYS
from dassl.utils.run_record import CWD_PATH_KEYS, resolve_recorded_path
from dassl.names import shown, unknown_name_message

__all__ = ["SweepError", "Entry", "Protocol", "Run", "CrossRun", "SweepSpec", "REPO", "load_spec_file",
           "build_spec", "load_protocol", "parse_entry", "yaml_to_opts", "format_opt_value",
           "opt_keys", "absolute_opts", "semantic_opts", "display_path", "RESERVED_KEYS",
           "NON_SEMANTIC_KEYS", "DEFAULT_OUTPUT", "SPEC_KEYS"]

REPO = Path(__file__).resolve().parents[2]
DATASET_DIR = REPO / "configs" / "datasets"
METHOD_DIR = REPO / "configs" / "trainers" / "CLIP_AGIQA"
ABLATION_DIR = REPO / "configs" / "ablations"
PROTOCOL_DIR = REPO / "configs" / "protocols"
DEFAULT_TRAINER = "CLIP_AGIQA"
DEFAULT_OUTPUT = "output/sweep"
# Set by the sweep itself for every run; user opts must not override them.
RESERVED_KEYS = ("SEED", "OUTPUT_DIR", "RESUME", "DATASET.ROOT", "DATASET.SPLIT_SEED",
                 "DATASET.SPLIT_INDEX", "TRAINER.NAME")
# Opts that may change between invocations of one experiment (how fast it runs, how much it
# prints, the device): left out of a run's identity, so e.g. --extra-opts DATALOADER.NUM_WORKERS 8
# on another machine still skips / resumes the runs made before. The keys train.py ignores when
# it resumes a run (`dassl.utils.run_dir.IGNORED_KEYS`), less those the sweep sets itself.
NON_SEMANTIC_KEYS = tuple(sorted(IGNORED_KEYS - set(RESERVED_KEYS)))
SPEC_KEYS = ("root", "output", "datasets", "variants", "protocols", "seeds", "split_seeds",
             "split_indices", "cross", "extra_opts")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")  # one safe path component


class SweepError(UserError, ValueError):
    """A sweep specification, protocol or run directory is inconsistent (message says where)."""


@dataclass(frozen=True)
class Entry:
    """A dataset or method variant: a yaml file plus opts (``trainer`` is used by variants)."""

    name: str
    config: Path
    opts: tuple[str, ...] = ()
    trainer: str = DEFAULT_TRAINER


@dataclass(frozen=True)
class Protocol:
    """A named evaluation protocol: the yaml it comes from and its flattened opts."""

    name: str
    path: Path
    opts: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    """One ``train.py`` invocation of a sweep."""

    dataset: Entry
    variant: Entry
    protocol: Protocol
    split_seed: int
    seed: int
    output_dir: Path
    split_index: int | None = None

    @property
    def split_folder(self) -> str:
        """``split<K>`` for a fixed split file index, else ``splitseed<K>``."""
        return (f"splitseed{self.split_seed}" if self.split_index is None
                else f"split{self.split_index}")

    @property
    def key(self) -> str:
        """``dataset/variant/protocol/splitseedK/seedS`` (the run's folder below the output;
        ``split<K>`` instead of ``splitseed<K>`` with split indices)."""
        return (f"{self.dataset.name}/{self.variant.name}/{self.protocol.name}/"
                f"{self.split_folder}/seed{self.seed}")

    def opts(self, extra_opts: Sequence[str] = ()) -> list[str]:
        """Trailing KEY VALUE opts: dataset, variant, protocol, split seed (and index), then
        extra opts."""
        index = [] if self.split_index is None else ["DATASET.SPLIT_INDEX", str(self.split_index)]
        return [*self.dataset.opts, *self.variant.opts, *self.protocol.opts,
                "DATASET.SPLIT_SEED", str(self.split_seed), *index, *extra_opts]

    def train_argv(self, root: str, extra_opts: Sequence[str] = ()) -> list[str]:
        """Arguments of ``train.py`` (without the interpreter and script path)."""
        return ["--root", str(root), "--seed", str(self.seed), "--trainer", self.variant.trainer,
                "--dataset-config-file", str(self.dataset.config),
                "--config-file", str(self.variant.config),
                "--output-dir", str(self.output_dir), *self.opts(extra_opts)]

    def identity(self, extra_opts: Sequence[str] = ()) -> dict:
        """What makes two runs the same experiment (the data root and repo location do not)."""
        return {"dataset": self.dataset.name, "dataset_config": display_path(self.dataset.config),
                "variant": self.variant.name, "variant_config": display_path(self.variant.config),
                "trainer": self.variant.trainer, "protocol": self.protocol.name,
                "seed": self.seed, "split_seed": self.split_seed,
                **({} if self.split_index is None else {"split_index": self.split_index}),
                "opts": semantic_opts(self.opts(extra_opts))}


@dataclass(frozen=True)
class CrossRun:
    """Evaluation of the trained ``run`` (dataset A) on all of ``target`` (dataset B):
    ``train.py --eval-only --model-dir RUN --dataset-config-file B DATASET.SPLIT_MODE all``."""

    run: Run
    target: Entry

    @property
    def output_dir(self) -> Path:
        return self.run.output_dir / "eval" / self.target.name

    @property
    def key(self) -> str:
        return f"{self.run.key}/eval/{self.target.name}"

    def opts(self, extra_opts: Sequence[str] = ()) -> list[str]:
        return [*self.target.opts, "DATASET.SPLIT_MODE", "all", *extra_opts]

    def train_argv(self, root: str, extra_opts: Sequence[str] = ()) -> list[str]:
        """Arguments of the eval-only ``train.py`` call: the model, its transforms, precision
        and levels come from the trained run, only the data from B."""
        return ["--eval-only", "--model-dir", str(self.run.output_dir), "--root", str(root),
                "--dataset-config-file", str(self.target.config),
                "--output-dir", str(self.output_dir), *self.opts(extra_opts)]

    def identity(self, extra_opts: Sequence[str] = ()) -> dict:
        return {"evaluates": self.run.key, "dataset": self.target.name,
                "dataset_config": display_path(self.target.config),
                "opts": semantic_opts(self.opts(extra_opts))}


@dataclass
class SweepSpec:
    """A resolved sweep; ``runs()`` lists its runs in loop order."""

    datasets: list[Entry]
    variants: list[Entry]
    protocols: list[Protocol]
    seeds: list[int]
    split_seeds: list[int]
    root: str
    output: Path
    extra_opts: tuple[str, ...] = field(default_factory=tuple)
    split_indices: list[int] = field(default_factory=list)
    cross: bool = False

    def runs(self) -> list[Run]:
        """Runs of every dataset x variant pair the variant applies to (see `applies_to`), per
        split (seed or fixed split index) and seed."""
        splits = ([(self.split_seeds[0], i) for i in self.split_indices] if self.split_indices
                  else [(k, None) for k in self.split_seeds])
        runs = []
        for d in self.datasets:
            for v in self.variants:
                if not applies_to(v, d):
                    continue
                for p in self.protocols:
                    for k, i in splits:
                        for s in self.seeds:
                            folder = f"splitseed{k}" if i is None else f"split{i}"
                            runs.append(Run(d, v, p, k, s, self.output / d.name / v.name
                                            / p.name / folder / f"seed{s}", i))
        return runs

    def cross_runs(self) -> list[CrossRun]:
        """With ``cross``: every run evaluated on every other dataset, in run order."""
        if not self.cross:
            return []
        return [CrossRun(run, target) for run in self.runs() for target in self.datasets
                if target.name != run.dataset.name]

    def skipped(self) -> list[tuple[str, str]]:
        """`(dataset, variant)` names of the pairs left out because the variant is named for
        another database."""
        return [(d.name, v.name) for d in self.datasets for v in self.variants
                if not applies_to(v, d)]


def database_tag(variant_name: str) -> str | None:
    """The database a variant is named for: the longest lower-case dataset yaml stem that
    ends its name after an underscore, else None (any database). The rule train.py enforces
    too (``datasets.scope``).
    """
    return scope_tag(variant_name)


def applies_to(variant: Entry, dataset: Entry) -> bool:
    """Whether ``variant`` runs on ``dataset``: variants named for a database (its config
    file's stem, see ``database_tag``) only on the dataset entry of that database's yaml."""
    return config_applies_to(variant.config, dataset.config)


def absolute_opts(opts: Sequence[str]) -> list[str]:
    """``opts`` with each working-directory-relative path (``CWD_PATH_KEYS``) that names an
    existing file written absolute, as train.py stores it, so that the sweep is the same
    experiment from any folder."""
    return [x for k, v in zip(opts[0::2], opts[1::2])
            for x in (k, resolve_recorded_path(v, None) if k in CWD_PATH_KEYS else v)]


def semantic_opts(opts: Sequence[str]) -> list[str]:
    """``absolute_opts(opts)`` without the ``NON_SEMANTIC_KEYS`` pairs (what makes two runs
    the same experiment)."""
    absolute = absolute_opts(opts)
    return [x for k, v in zip(absolute[0::2], absolute[1::2]) if k not in NON_SEMANTIC_KEYS
            for x in (k, v)]


def display_path(path: Path) -> str:
    """``path`` relative to the repository when inside it (stable if the repo moves)."""
    try:
        return Path(path).resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(Path(path).resolve())


def _resolve_yaml(value: str, folder: Path, what: str, also: Sequence[str] = ()) -> Path:
    """A yaml path (absolute, cwd-relative or repo-relative) or a bare name in ``folder``
    (variants: in ``configs/trainers/CLIP_AGIQA``, else ``configs/ablations``, as main.sh's CFG).
    An unknown bare name is an error listing the valid ones (the yaml stems, and ``also``: the
    names the spec defines)."""
    text = os.path.expanduser(str(value))
    is_path = text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text
    folders = [folder, ABLATION_DIR] if folder == METHOD_DIR else [folder]
    tried = (([Path(text)] if os.path.isabs(text) else [Path.cwd() / text, REPO / text])
             if is_path else [f / f"{text}.yaml" for f in folders])
    for path in tried:
        if path.is_file():
            return path.resolve()
    if is_path:
        raise SweepError(f"{what} {shown(value)}: no such yaml file (tried "
                         f"{', '.join(map(str, tried))})")
    valid = [*also, *(p.stem for f in folders for p in f.glob("*.yaml"))]
    where = " or ".join(display_path(f) + "/" for f in folders)
    raise SweepError(f"{unknown_name_message(what, str(value), valid)} (the yaml files in "
                     f"{where}, or a yaml path)")


def format_opt_value(value: Any) -> str:
    """Text that yacs' ``merge_from_list`` (``ast.literal_eval``, else the raw string) turns
    back into ``value``: strings that would parse as another literal are quoted."""
    if value is None:
        raise SweepError("opts cannot hold a null value")
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
        return value if isinstance(parsed, str) else repr(value)
    if isinstance(value, (list, tuple)):
        return repr(list(value))
    return repr(value)


def yaml_to_opts(mapping: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Flatten a nested yaml mapping into a ``[KEY, VALUE, ...]`` opts list."""
    opts: list[str] = []
    for key, value in mapping.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            opts += yaml_to_opts(value, f"{full}.")
        else:
            opts += [full, format_opt_value(value)]
    return opts


def _as_opts(value: Any, what: str) -> tuple[str, ...]:
    """A ``[KEY, VALUE, ...]`` list or ``{KEY: VALUE}`` mapping as a flat string tuple."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple(yaml_to_opts(value))
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise SweepError(f"{what}: opts must be a list of KEY VALUE pairs or a mapping, "
                         f"got {shown(value)}")
    if len(value) % 2:
        raise SweepError(f"{what}: opts need KEY VALUE pairs, got an odd count: {list(value)}")
    # List values are command-line text (as after train.py's flags): strings pass verbatim.
    return tuple(str(v) if i % 2 == 0 or isinstance(v, str) else format_opt_value(v)
                 for i, v in enumerate(value))


def opt_keys(opts: Sequence[str]) -> list[str]:
    return list(opts[0::2])


def _check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise SweepError(f"{what} name {shown(name)} must be one folder name "
                         "(letters, digits, . _ + -)")
    return name


def parse_entry(item: Any, folder: Path, what: str, also: Sequence[str] = ()) -> Entry:
    """A dataset/variant entry from a string ``[NAME=]CONFIG`` or a mapping (see module doc);
    ``also``: the entry names the spec defines (listed when the name is unknown)."""
    if isinstance(item, str):
        name, _, config = item.partition("=") if "=" in item else ("", "", item)
        item = {"name": name or None, "config": config}
    if not isinstance(item, Mapping) or ("config" not in item and "name" not in item):
        raise SweepError(f"{what} entry {shown(item)}: give a name, a yaml path or a mapping with "
                         "'config'")
    unknown = set(item) - {"name", "config", "opts", "trainer"}
    if unknown:
        raise SweepError(f"{what} entry {dict(item)!r}: unknown field(s) {sorted(unknown)}")
    config = _resolve_yaml(str(item.get("config") or item["name"]), folder, what, also)
    name = _check_name(str(item.get("name") or config.stem), what)
    return Entry(name, config, _as_opts(item.get("opts"), f"{what} {name}"),
                 str(item.get("trainer") or DEFAULT_TRAINER))


def read_yaml(path: Path, what: str) -> Any:
    """The yaml document in ``path`` (``{}`` when empty); ``SweepError`` in one line naming
    ``what`` and the file for text that is not UTF-8 or not valid yaml (line and column)."""
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f) or {}
    except UnicodeDecodeError:
        raise SweepError(f"{what} {shown(path)} is not UTF-8 text (a yaml file is expected)") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"{what} {shown(path)} is not valid yaml"
                         f"{describe_yaml_error(exc)}") from None


def load_protocol(value: str) -> Protocol:
    """A protocol by name (``configs/protocols/<name>.yaml``) or yaml path."""
    path = _resolve_yaml(value, PROTOCOL_DIR, "protocol")
    try:
        content = load_config_file(str(path), "protocol")  # as train.py reads a config yaml
    except (OSError, ValueError) as exc:
        raise SweepError(str(exc)) from None
    if not isinstance(content, Mapping) or not content:
        raise SweepError(f"protocol {shown(path)} must be a non-empty yaml mapping of config keys")
    opts = tuple(yaml_to_opts(content))
    reserved = sorted(set(opt_keys(opts)) & set(RESERVED_KEYS))
    if reserved:
        raise SweepError(f"protocol {shown(path)} sets {reserved}, which the sweep sets per run")
    return Protocol(_check_name(path.stem, "protocol"), path, opts)


def load_spec_file(path: str | os.PathLike) -> dict:
    """Read a sweep yaml; unknown top-level keys are an error (typos must not pass silently)."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep spec {shown(path)} not found")
    raw = read_yaml(path, "sweep spec")
    if not isinstance(raw, Mapping):
        raise SweepError(f"sweep spec {shown(path)} must be a yaml mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise SweepError(f"sweep spec {shown(path)}: unknown key(s) {unknown}; known: {list(SPEC_KEYS)}")
    return dict(raw)


def _yaml_folder(item: Any) -> Path | None:
    """The folder an entry string names (absolute, cwd- or repo-relative), else None."""
    if not isinstance(item, str) or "=" in item:
        return None
    text = os.path.expanduser(item)
    tried = [Path(text)] if os.path.isabs(text) else [Path.cwd() / text, REPO / text]
    return next((p.resolve() for p in tried if p.is_dir()), None)


def _expand_folders(items: Sequence[Any], what: str) -> list[Any]:
    """Variant entries with every folder replaced by the yaml files in it (sorted)."""
    out: list[Any] = []
    for item in items:
        folder = _yaml_folder(item) if what == "variant" else None
        if folder is None:
            out.append(item)
            continue
        files = sorted(folder.glob("*.yaml"))
        if not files:
            raise SweepError(f"{what} folder {shown(item)} holds no yaml files")
        out += [str(path) for path in files]
    return out


def _entries(cli: Sequence[str] | None, spec_items: Any, folder: Path, what: str) -> list[Entry]:
    """Spec entries, or the CLI selection: spec entry names, else ``[NAME=]CONFIG`` strings
    (variants: also folders of yaml files)."""
    spec_entries = [parse_entry(i, folder, what)
                    for i in _expand_folders(_as_list(spec_items), what)]
    by_name = {e.name: e for e in spec_entries}
    entries = spec_entries if cli is None else [
        by_name[c] if c in by_name else parse_entry(c, folder, what, list(by_name))
        for c in _expand_folders(list(cli), what)]
    names = [e.name for e in entries]
    if not entries:
        raise SweepError(f"no {what}s given: use --{what}s or '{what}s:' in the spec")
    if len(set(names)) != len(names):
        raise SweepError(f"{what} names must be unique, got {names}")
    return entries


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _ints(value: Any, what: str) -> list[int]:
    items = _as_list(value)
    if not items or any(isinstance(v, bool) or not isinstance(v, int) for v in items):
        raise SweepError(f"{what} must be a non-empty list of integers, got {shown(value)}")
    if len(set(items)) != len(items):
        raise SweepError(f"{what} must not repeat values, got {items}")
    return items


def build_spec(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> SweepSpec:
    """Combine a spec mapping with CLI ``overrides`` (same keys; None = not given).

    ``overrides["extra_opts"]`` is appended to the spec's extra opts; every other given
    override replaces the spec value. Defaults: root ``./data``, output ``output/sweep``,
    protocol ``paper``, seed 1, split seed 42 (the reference split).
    """
    def pick(key: str, default: Any) -> Any:
        given = overrides.get(key)
        return given if given is not None else raw.get(key, default)

    extra = _as_opts(raw.get("extra_opts"), "extra_opts") + _as_opts(
        overrides.get("extra_opts"), "--extra-opts")
    datasets = _entries(overrides.get("datasets"), raw.get("datasets"), DATASET_DIR, "dataset")
    variants = _entries(overrides.get("variants"), raw.get("variants"), METHOD_DIR, "variant")
    protocols = [load_protocol(str(p)) for p in _as_list(pick("protocols", ["paper"]))]
    if len({p.name for p in protocols}) != len(protocols):
        raise SweepError(f"protocol names must be unique, got {[p.name for p in protocols]}")
    controlled = set(RESERVED_KEYS).union(*(opt_keys(p.opts) for p in protocols))
    for what, opts in [(f"dataset {d.name}", d.opts) for d in datasets] + \
            [(f"variant {v.name}", v.opts) for v in variants] + [("extra opts", extra)]:
        clash = sorted(set(opt_keys(opts)) & controlled)
        if clash:
            raise SweepError(f"{what} sets {clash}: these keys are set by the sweep or its "
                             "protocol; choose or add a protocol instead")
    split_seeds = _ints(pick("split_seeds", [42]), "split_seeds")
    indices = pick("split_indices", [])
    split_indices = _ints(indices, "split_indices") if _as_list(indices) else []
    if split_indices and len(split_seeds) > 1:
        raise SweepError("give split seeds or split indices, not both: split indices name fixed "
                         "split files, which no seed changes")
    if any(i < 0 for i in split_indices):
        raise SweepError(f"split_indices must be >= 0, got {split_indices}")
    cross = pick("cross", False)
    if not isinstance(cross, bool):
        raise SweepError(f"cross must be true or false, got {cross!r}")
    if cross and len(datasets) < 2:
        raise SweepError("cross needs at least two datasets (A x B table)")
    return SweepSpec(datasets=datasets, variants=variants, protocols=protocols,
                     seeds=_ints(pick("seeds", [1]), "seeds"), split_seeds=split_seeds,
                     root=os.path.abspath(os.path.expanduser(str(pick("root", "./data")))),
                     output=Path(os.path.abspath(str(pick("output", DEFAULT_OUTPUT)))),
                     extra_opts=extra, split_indices=split_indices, cross=cross)
