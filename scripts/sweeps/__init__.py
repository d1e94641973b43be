"""Experiment orchestration on top of ``train.py``: named evaluation protocols and sweeps.

- ``scripts.sweeps.spec``: sweep specifications (yaml or CLI) and protocol yamls -> planned runs.
- ``scripts.sweeps.plan``: the plan saved in the sweep folder (``sweep_plan.json``), so that
  ``--status`` / ``--collect-only`` / a rerun need only the folder.
- ``scripts.sweeps.runner``: run status (done / resume / new), parallel execution of ``train.py``
  (one process per GPU, sequential on CPU).
- ``scripts.sweeps.cluster``: the SLURM executor (one submitit job array per submission,
  requeue on timeout, run states from the run folders and ``sacct``).
- ``scripts.sweeps.tables``: ``results.csv`` / ``summary.csv`` from the runs' ``results.json``.

Entry point: ``python scripts/sweep.py`` (``scripts/sweep.sh``).
"""
