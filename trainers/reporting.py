"""Run reports: `OUTPUT_DIR/results.json` and `OUTPUT_DIR/predictions.csv`, written atomically.

`results.json` (JSON, NaN written as null):
- common: `mode` ("train" | "eval_only"), `trainer`, `dataset`, `task`, `backbone`, `seed`,
  `precision` (effective, e.g. fp16 falls back to fp32 on CPU), `final_model`, `output_dir`;
- `final`: `{split, metrics, n_images}` of the model whose predictions are in predictions.csv,
  and `per_generator` `{generator: {srcc, plcc, n_images}}` when every tested image has a
  generator (the database's rule, `datasets/registry.py`; null correlations under 3 images);
- train mode: `last` and `selected` of the trainer's `training_result`
  (`dassl.engine.selection.TrainingResult`: `epoch` 1-based, `split`, `metrics`; `selected` also
  `selected_on`, `selection_metric`, `selection_value`);
- eval-only mode: `evaluated_checkpoint` = `{model_dir, load_epoch, modules: {name: {path,
  epoch, val_result}}}` and `trained_run` = `{dataset, task, train_mos_range}` of the run the
  model comes from (from its results.json; nulls when it has none);
- `data`: where the labels and the split came from (`label_files` and split `files` with path
  and SHA-256, split mode / seed / ratios / index, the level thresholds used and their rule), as
  the dataset records it; `level_names`; `final.mos_range` `[min, max]` of the tested MOS and,
  in train mode, `train_mos_range` of the training split (to tell whether MOS scales agree).
`predictions.csv`: header `name,mos,pred`, one row per test image in loader order (names and MOS
as the label file gives them), floats in full precision (`repr`), so an evaluation run can be
compared exactly with the training run.
`report.html`: the run's offline page (`trainers.run_report`).
`scatter.png`: MOS against prediction of those rows with the fitted 4-parameter logistic curve
and the line y = x; the title (`scatter_title`) names the tested split, the selected epoch and
the split it was selected on (or the evaluated checkpoint's epoch), and the reported metrics
(`dassl.evaluation.plots.save_scatter`); a figure that cannot be drawn only warns, it never
fails a finished run.
"""
from __future__ import annotations

import csv
import io
import math
import os
import warnings
from typing import Any, Iterable


from dassl.evaluation.metric_names import GROUP_METRICS
from dassl.utils import ConfigError, atomic_write_text, checkpoint_file_name, write_json
from dassl.utils.run_record import CONFIG_FILE
from dassl.utils.run_dir import (PREDICTIONS_FILE, RESULTS_FILE, SCATTER_FILE, read_config_file,
                                 read_results)


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, tuples -> lists, NumPy/torch scalars -> Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def tested_items(trainer: Any) -> list | None:
    """The dataset items (`Datum`) of the last `test()` in loader order, or None when they do
    not line up with the evaluator's rows."""
    rows = list(trainer.evaluator.predictions())
    split = _tested_split(trainer)
    dataset = trainer.dm.dataset
    items = list((dataset.val if split == "val" else dataset.test) or [])
    aligned = len(items) == len(rows) and all(
        os.path.basename(item.impath) == os.path.basename(str(row[0]))
        for item, row in zip(items, rows)
    )
    return items if aligned else None


def prediction_rows(trainer: Any, items: list | None) -> list[tuple[str, float, float]]:
    """`(name, mos, pred)` of the last `test()`, in loader order.

    Names and MOS come from the dataset `items` (`tested_items`: the label file's name and its
    exact MOS, not the float32 copy the evaluator saw) when they line up with the rows.
    """
    rows = list(trainer.evaluator.predictions())
    if items is None or any(item.mos is None for item in items):
        return rows
    return [(item.name, item.mos, row[2]) for item, row in zip(items, rows)]


MIN_GENERATOR_IMAGES = 3  # fewer images give null correlations (the rule)


def per_generator(rows: list[tuple[str, float, float]],
                  generators: list[str | None] | None) -> dict | None:
    """`{generator: {srcc, plcc, n_images}}` (`GROUP_METRICS` and the count) of
    `(name, mos, pred)` rows whose images come from `generators` (one per row, the database's
    rule), in order of first appearance;
    correlations as `iqa_metrics` computes them for the whole split, None (null) for a
    generator with fewer than `MIN_GENERATOR_IMAGES` images. None when a row has no
    generator (the database declares no rule, or a name does not follow it)."""
    if not rows or generators is None or len(generators) != len(rows) \
            or any(g is None for g in generators):
        return None
    from dassl.evaluation.evaluator import iqa_metrics

    groups: dict[str, list[int]] = {}
    for index, generator in enumerate(generators):
        groups.setdefault(str(generator), []).append(index)
    table = {}
    for generator, indices in groups.items():
        entry: dict[str, Any] = dict.fromkeys(GROUP_METRICS)
        if len(indices) >= MIN_GENERATOR_IMAGES:
            metrics = iqa_metrics([rows[i][2] for i in indices], [rows[i][1] for i in indices])
            entry.update({name: metrics[name] for name in GROUP_METRICS})
        entry["n_images"] = len(indices)
        table[generator] = entry
    return table


def _tested_split(trainer: Any) -> str:
    """The split of the trainer's last `test()`."""
    return trainer.last_test_split or trainer.cfg.TEST.SPLIT


def mos_range(values: Iterable[Any]) -> list[float] | None:
    """`[min, max]` of the finite MOS among `values`; None when there are none."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return [min(finite), max(finite)] if finite else None


def build_results(trainer: Any, mode: str, rows: list[tuple[str, float, float]],
                  model_dir: str | None = None, load_epoch: int | None = None,
                  items: list | None = None) -> dict:
    """Collect the report of a finished `train()` (mode "train") or `test()` ("eval_only") whose
    final test gave the `(name, mos, pred)` `rows` of the dataset `items` (`tested_items`)."""
    n_images = len(rows)
    cfg = trainer.cfg
    results: dict[str, Any] = {
        "mode": mode,
        "trainer": cfg.TRAINER.NAME,
        "dataset": cfg.DATASET.NAME,
        "task": cfg.DATASET.get("TASK", ""),
        "backbone": trainer.spec.backbone,
        "seed": cfg.SEED,
        "precision": trainer.prec,
        # The model evaluated (its checkpoints' spec for --eval-only, not the command line's).
        "model_spec": trainer.spec.to_dict(),
        "final_model": cfg.TEST.FINAL_MODEL,
        "output_dir": os.path.abspath(cfg.OUTPUT_DIR),
        "final": {
            "split": _tested_split(trainer),
            "metrics": dict(trainer.last_test_results or {}),
            "n_images": n_images,
        },
    }
    dataset = trainer.dm.dataset
    results["data"] = getattr(dataset, "provenance", None)
    results["level_names"] = list(trainer.level_names)
    results["final"]["mos_range"] = mos_range(row[1] for row in rows)
    generators = None if items is None else [getattr(i, "generator", None) for i in items]
    table = per_generator(rows, generators)
    if table is not None:
        results["final"]["per_generator"] = table
    if mode == "train":
        results["train_mos_range"] = mos_range(item.mos for item in dataset.train_x or [])
        result = trainer.training_result  # None when the run had no final test (NO_TEST)
        results["last"] = None if result is None else dict(result.last)
        results["selected"] = None if result is None else dict(result.selected)
    else:
        results["evaluated_checkpoint"] = {
            "model_dir": os.path.abspath(model_dir) if model_dir else None,
            "load_epoch": load_epoch,
            "file": checkpoint_file_name(load_epoch),
            "modules": dict(trainer.loaded_checkpoints),
        }
        trained = (read_results(model_dir) if model_dir else None) or {}
        results["trained_run"] = {key: trained.get(key) for key in
                                  ("dataset", "task", "train_mos_range")}
    return _clean(results)


def predictions_csv(rows: Iterable[tuple[str, float, float]]) -> str:
    """CSV text with header `name,mos,pred` for `(name, mos, pred)` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "mos", "pred"])
    for name, mos, pred in rows:
        writer.writerow([name, repr(float(mos)), repr(float(pred))])
    return buffer.getvalue()


def save_scatter_plot(rows: list[tuple[str, float, float]], metrics: dict, path: str,
                      title: str = "") -> bool:
    """Draw `scatter.png` of `(name, mos, pred)` rows; return False (with a warning) on failure.

    `metrics` (e.g. `trainer.last_test_results`) are the values shown in the title.
    """
    try:
        from dassl.evaluation.plots import save_scatter

        save_scatter([r[2] for r in rows], [r[1] for r in rows], path,
                     title_metrics=metrics or None, title=title)
    except (ImportError, OSError, ValueError, RuntimeError) as exc:
        warnings.warn(f"could not draw {path}: {exc}", RuntimeWarning, stacklevel=2)
        return False
    return True


def _model_shown(results: dict) -> str:
    """Which model's predictions a report shows: the selected epoch and the split it was selected
    on (train mode), or the evaluated checkpoint's epoch (eval-only); "" when unknown."""
    selected = results.get("selected")
    if results.get("mode") == "train":
        if not selected or selected.get("epoch") is None:
            return ""
        on = selected.get("selected_on")
        if on in (None, "last_epoch"):
            return f"epoch {selected['epoch']} (the last epoch, no selection)"
        metric = selected.get("selection_metric")
        by = f" by {metric.upper()}" if metric else ""
        return f"epoch {selected['epoch']}, selected on the {on} split{by}"
    modules = (results.get("evaluated_checkpoint") or {}).get("modules") or {}
    epochs = sorted({m.get("epoch") for m in modules.values() if m.get("epoch") is not None})
    return f"checkpoint of epoch {', '.join(map(str, epochs))}" if epochs else ""


def scatter_title(results: dict) -> str:
    """Title lines of `scatter.png` for a `results.json` dict: database and tested split, then
    the model shown (selected epoch and selection split, or the evaluated checkpoint)."""
    source = "after training" if results.get("mode") == "train" else "eval-only"
    first = " ".join(f"{results['dataset']} {results.get('task') or ''}: "
                     f"{results['final']['split']} split ({source})".split())
    shown = _model_shown(results)
    return f"{first}\n{shown}" if shown else first


def write_reports(trainer: Any, mode: str, model_dir: str | None = None,
                  load_epoch: int | None = None) -> dict:
    """Write results.json, predictions.csv and scatter.png into `OUTPUT_DIR`; return the results
    dict."""
    output_dir = trainer.cfg.OUTPUT_DIR
    items = tested_items(trainer)
    rows = prediction_rows(trainer, items)
    results = build_results(trainer, mode, rows, model_dir, load_epoch, items)
    atomic_write_text(os.path.join(output_dir, PREDICTIONS_FILE), predictions_csv(rows))
    write_json(results, os.path.join(output_dir, RESULTS_FILE))
    print(f"Results written to {os.path.join(output_dir, RESULTS_FILE)} and {PREDICTIONS_FILE}")
    if rows and save_scatter_plot(rows, dict(trainer.last_test_results or {}),
                                  os.path.join(output_dir, SCATTER_FILE), title=scatter_title(results)):
        print(f"Scatter plot written to {os.path.join(output_dir, SCATTER_FILE)}")
    page = write_page(trainer, results, rows, items, model_dir if mode != "train" else None)
    if page:
        print(f"Report page: {page}")
    return results


def _trained_epochs(run_dir: str) -> int:
    """`OPTIM.MAX_EPOCH` of the run folder's config.yaml; 0 when it has none."""
    try:
        config = read_config_file(os.path.join(run_dir, CONFIG_FILE)) or {}
        return int(config.get("OPTIM.MAX_EPOCH") or 0)
    except (ConfigError, ValueError, TypeError):
        return 0


def write_page(trainer: Any, results: dict, rows: list[tuple[str, float, float]],
               items: list | None, model_dir: str | None) -> str | None:
    """Write `report.html` (`trainers.run_report`); the curves come from the trained run's
    folder (`model_dir`) for an eval-only run. A page that cannot be written only warns (None),
    like the scatter: it never fails a finished run."""
    from .run_report import write_run_report

    curves_dir = model_dir or trainer.cfg.OUTPUT_DIR
    n_epochs = _trained_epochs(model_dir) if model_dir else int(trainer.cfg.OPTIM.MAX_EPOCH)
    probabilities = getattr(trainer, "test_level_probabilities", None)
    try:
        return write_run_report(
            trainer.cfg.OUTPUT_DIR, results, rows,
            image_paths=None if items is None else [item.impath for item in items],
            level_probabilities=None if probabilities is None else probabilities.numpy(),
            curves_dir=curves_dir, n_epochs=n_epochs)
    except (ImportError, OSError, ValueError, RuntimeError) as exc:
        warnings.warn(f"could not write the report page: {exc}", RuntimeWarning, stacklevel=2)
        return None
