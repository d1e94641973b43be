"""Check main.sh's positional method arguments against its CFG yaml and its `--` options.

main.sh passes CTP, NCTX and CSC to train.py as ``TRAINER.CLIP_AGIQA.*`` options after the CFG
yaml, and names the run folder ``nctxNCTX_cscCSC_ctpCTP`` after them. A yaml that sets one of these
keys itself (an ablation such as ``nctx4``, ``csc``, ``ctp_middle``) would be overridden silently,
and a ``CTX_INIT`` yaml sets the context length through its words' BPE token count, so the
positional values must equal what the run really uses.

Usage: python scripts/method_args.py CFG_YAML NCTX CSC CTP [KEY VALUE ...]
Prints one ``error: ...`` line and exits 2 on a conflict; prints nothing and exits 0 otherwise.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
PREFIX = "TRAINER.CLIP_AGIQA."
# Positional argument of main.sh -> the config key it sets.
POSITIONAL = {"NCTX": "N_CTX", "CSC": "CSC", "CTP": "CLASS_TOKEN_POSITION"}


def _display(path: Path) -> str:
    """`path` relative to the repository when inside it."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def _opt_value(text: str) -> Any:
    """A command-line option value as yacs' merge_from_list reads it."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def conflict(cfg_yaml: Path, positional: Mapping[str, str], opts: Sequence[str]) -> str | None:
    """The error text for the first disagreement between the positional `NCTX`, `CSC`, `CTP`
    (main.sh's spelling, CSC already `True`/`False`) and what the run would use, else None.

    `cfg_yaml` is the CFG yaml (read with its `_BASE_`); `opts` main.sh's ``KEY VALUE`` pairs after ``--``.
    """
    for key in opts[0::2]:
        for arg, name in POSITIONAL.items():
            if key == PREFIX + name:
                return (f"the options after -- set {key}: pass it as the positional {arg} "
                        "instead (it also names the run folder)")
    from dassl.config import load_config_file

    section = (load_config_file(str(cfg_yaml)).get("TRAINER") or {}).get("CLIP_AGIQA") or {}
    where = _display(cfg_yaml)
    ctx_init = section.get("CTX_INIT") or ""
    for key, value in zip(opts[0::2], opts[1::2]):
        if key == PREFIX + "CTX_INIT":
            ctx_init, where = _opt_value(value) or "", "the options after --"
    if ctx_init:
        # The context length a CTX_INIT sets, counted as the model spec counts it.
        from trainers.method.model_spec import count_bpe_tokens

        n_ctx = count_bpe_tokens(str(ctx_init))
        if positional["NCTX"] != str(n_ctx):
            return (f"{where} sets {PREFIX}CTX_INIT {ctx_init!r}, {n_ctx} tokens, which set "
                    f"{PREFIX}N_CTX {n_ctx}: pass NCTX {n_ctx}")
        if positional["CSC"] != "False":
            return (f"{where} sets {PREFIX}CTX_INIT {ctx_init!r}, a context shared by all "
                    f"levels ({PREFIX}CSC is ignored): pass CSC False")
    for arg, name in POSITIONAL.items():
        if name == "N_CTX" and ctx_init:
            continue
        if name in section and str(section[name]) != positional[arg]:
            return (f"{_display(cfg_yaml)} sets {PREFIX}{name} {str(section[name])}: "
                    f"pass {arg} {str(section[name])}")
    return None


def main(argv: Sequence[str]) -> int:
    """Command line: see the module docstring."""
    if len(argv) < 4:
        print("error: usage: method_args.py CFG_YAML NCTX CSC CTP [KEY VALUE ...]",
              file=sys.stderr)
        return 2
    cfg_yaml, nctx, csc, ctp = argv[:4]
    try:
        message = conflict(Path(cfg_yaml), {"NCTX": nctx, "CSC": csc, "CTP": ctp}, list(argv[4:]))
    except (OSError, ValueError) as exc:  # an unreadable yaml or _BASE_ (dassl.config)
        message = str(exc)
    if message:
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main(sys.argv[1:]))
