"""The local scoring page of a trained run: `python score.py RUN --serve [--host] [--port]`.

A Gradio page (the optional `requirements-app.txt`) on the run's `Scorer`: drop one or many
images (and, for a prompt-conditioned run, their generation prompts, one a line in upload
order); it shows each image's predicted MOS against the run's training MOS range, its level
probabilities as bars, a gallery sorted by score, a CSV (`name,score`, as `score.py` writes it)
to download, and the run's `report.html`. Scores come from `Scorer.assess_paths`, the
decoding, batches and model calls of `score.py`'s `Scorer.score_paths`, so they are the ones
`score.py` prints for the same files. Everything it loads is served by Gradio itself (local
fonts, no analytics): the page works with no network.
"""
from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from dassl.utils import InputError, atomic_write_text

from dassl.utils.run_dir import REPORT_FILE
from .scorer import DEFAULT_BATCH_SIZE, Scorer, scores_csv_text

__all__ = ["INSTALL_HINT", "import_gradio", "score_files", "build_app", "serve"]

INSTALL_HINT = "pip install -r requirements-app.txt (Gradio)"


def import_gradio():
    """The gradio module; `InputError` naming what to install when it is missing."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing sent anywhere
    try:
        import gradio
    except ImportError:
        raise InputError(f"--serve needs Gradio, which is not installed: {INSTALL_HINT}") \
            from None
    return gradio


def score_files(scorer: Scorer, paths: Sequence[str], prompts: Sequence[str] | None = None,
                batch_size: int = DEFAULT_BATCH_SIZE) -> list[dict]:
    """One dict per file, in order: `name` (file name), `path`, `score` (float),
    `levels` `{level name: probability}`."""
    scores, probabilities = scorer.assess_paths(list(paths), batch_size=batch_size,
                                                prompts=prompts)
    return [{"name": os.path.basename(path), "path": path, "score": float(score),
             "levels": dict(zip(scorer.level_names, map(float, row)))}
            for path, score, row in zip(paths, scores.tolist(), probabilities)]


def _bar(fraction: float, label: str, colour: str) -> str:
    width = max(0.0, min(1.0, fraction)) * 100
    return (f'<div class="bar"><span class="fill" style="width:{width:.1f}%;'
            f'background:{colour}"></span><span class="lab">{html.escape(label)}</span></div>')


def results_html(rows: Sequence[dict], score_range: tuple[float, float] | None) -> str:
    """Per image: its score (exact value in `data-score`) against the training MOS range and
    its level probabilities as bars."""
    style = ("<style>.img-result{border:1px solid #ddd;border-radius:6px;padding:.5em;"
             "margin:.4em 0}.bar{position:relative;height:1.2em;background:#eee;margin:2px 0;"
             "width:320px}.fill{position:absolute;left:0;top:0;bottom:0}.lab{position:relative;"
             "padding-left:4px;font-size:.8em}</style>")
    parts = [style]
    for row in rows:
        score = row["score"]
        if score_range:
            low, high = score_range
            position = (score - low) / (high - low) if high > low else 0.5
            where = _bar(position, f"{score:.3f} on the training range {low:.3f} - {high:.3f}",
                         "#7aa6da")
        else:
            where = '<div class="note">the run has no training MOS range (splits/train.csv)</div>'
        levels = "".join(_bar(p, f"{name} {p:.3f}", "#b5bd68")
                         for name, p in row["levels"].items())
        parts.append(f'<div class="img-result" data-name="{html.escape(row["name"])}" '
                     f'data-score="{score!r}"><b>{html.escape(row["name"])}</b>: predicted MOS '
                     f'<span class="score">{score:.4f}</span>{where}'
                     f"<div>level probabilities</div>{levels}</div>")
    return "".join(parts)


def write_csv(rows: Sequence[dict], folder: str) -> str:
    """`folder/scores.csv`, as score.py writes it (`scores_csv_text`), written atomically."""
    path = os.path.join(folder, "scores.csv")
    atomic_write_text(path, scores_csv_text([r["name"] for r in rows], [r["score"] for r in rows]))
    return path


def _prompts(text: str, count: int, needed: bool) -> list[str] | None:
    if not needed:
        return None
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(lines) != count:
        raise InputError(f"this run needs each image's generation prompt: give {count} "
                         f"lines, one per image in upload order (got {len(lines)})")
    return lines


def _report_frame(run_dir: str) -> str:
    path = Path(run_dir) / REPORT_FILE
    if not path.is_file():
        return f"<p>The run has no {REPORT_FILE} (written by runs finished with this version).</p>"
    document = html.escape(path.read_text(encoding="utf-8"), quote=True)
    return (f'<iframe title="run report" srcdoc="{document}" '
            'style="width:100%;height:900px;border:1px solid #ddd"></iframe>')


def build_app(scorer: Scorer, run_dir: str) -> Any:
    """The Gradio `Blocks` of the page (not launched)."""
    gr = import_gradio()
    work = tempfile.mkdtemp(prefix="clip-agiqa-serve-")
    low_high = scorer.score_range
    with gr.Blocks(title=f"CLIP-AGIQA: {os.path.basename(os.path.abspath(run_dir))}",
                   analytics_enabled=False) as app:
        gr.Markdown(f"## Score images with `{html.escape(os.path.abspath(run_dir))}`\n"
                    "Scores are the predicted MOS that `score.py` gives (higher is better)"
                    + (f"; the training MOS range is {low_high[0]:.3f} - {low_high[1]:.3f}."
                       if low_high else "."))
        with gr.Tab("Score"):
            files = gr.File(label="images", file_count="multiple", file_types=["image"],
                            elem_id="upload")
            prompts = gr.Textbox(label="generation prompts, one a line in upload order",
                                 lines=3, visible=scorer.needs_prompts, elem_id="prompts")
            button = gr.Button("Score", variant="primary", elem_id="score-button")
            results = gr.HTML(elem_id="results")
            gallery = gr.Gallery(label="sorted by score, best first", columns=6,
                                 elem_id="gallery")
            download = gr.File(label="scores.csv", elem_id="csv")
        with gr.Tab("Run report"):
            gr.HTML(_report_frame(run_dir))

        def run(uploaded, prompt_text):
            paths = [f if isinstance(f, str) else f.name for f in (uploaded or [])]
            if not paths:
                raise gr.Error("Drop one or more images first.")
            try:
                rows = score_files(scorer, paths, _prompts(prompt_text, len(paths),
                                                           scorer.needs_prompts))
            except (InputError, OSError, ValueError) as exc:
                raise gr.Error(str(exc)) from None
            ranked = sorted(rows, key=lambda r: -r["score"])
            folder = tempfile.mkdtemp(dir=work)
            return (results_html(rows, low_high),
                    [(r["path"], f"{r['name']}: {r['score']:.3f}") for r in ranked],
                    write_csv(rows, folder))

        button.click(run, inputs=[files, prompts], outputs=[results, gallery, download])
    return app


def serve(scorer: Scorer, run_dir: str, host: str = "127.0.0.1", port: int = 7860,
          block: bool = True) -> Any:
    """Launch the page on `host:port` (blocking unless `block` is False; then the app is
    returned and `app.close()` stops it)."""
    gr = import_gradio()
    app = build_app(scorer, run_dir)
    app.queue()
    app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block,
               theme=gr.themes.Default(), footer_links=[], quiet=not block)
    return app
