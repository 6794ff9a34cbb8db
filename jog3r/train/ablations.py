"""The paper's findings at small scale: one table from the ``jog3r eval`` results of the ``make ablations`` runs.

``make ablations`` mirrors the paper's setting (Sec. 4.1-4.3) with the ``tiny`` preset on the packed synthetic set:

1. ``base``: a generator trained from scratch with ``L_gen`` only - our stand-in for the *pre-trained OpenSora*
   (its decoder and head stay at their random init);
2. three fine-tunes of ``base`` with the same steps, schedule, seed and data order:
   ``frozen-rec`` ("frozen OS + rec": generator frozen, decoder and head trained with ``L_rec``),
   ``gen`` ("fine-tuned OS": ``L_gen`` only) and ``joint`` (JOG3R: ``L_gen + lambda L_rec``);
3. ``jog3r eval`` of each. Every model's videos are scored by MEt3R with the point maps of one fixed model
   (``--met3r-weights``; the paper scores every row with JOG3R), so the Table 1 column compares generators, not
   point-map heads. V2C (Table 2) and the T2V+C vs T2V -> V2C self-consistency need a trained decoder, so they are
   reported for ``frozen-rec`` and ``joint`` only.

This module reads ``<root>/<run>/eval/results.json`` for every run that has one and writes ``<root>/ablations.md``
and ``<root>/ablations.json``. A run that was never started is listed as "not run", one without an eval as "not
evaluated"; nothing is filled in.

Example::

    make ablations                                   # trains, evaluates and calls:
    python -m jog3r.train.ablations --root runs/ablations
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import tyro

RUNS = (
    # run folder, paper row, trains with L_gen, trains with L_rec, generator trainable
    ("base", "pre-trained OS (our base: L_gen from scratch)", True, False, True),
    ("frozen-rec", "frozen OS + rec", False, True, False),
    ("gen", "fine-tuned OS", True, False, True),
    ("joint", "JOG3R (joint)", True, True, True),
)
V2C_KEYS = ("Rot. err.", "Trans. err.", "RRA@5", "RTA@5", "mAA@30")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.4f}" if abs(v) < 1 else f"{v:.2f}"
    return "-" if v is None else str(v)


def _mark(flag: bool) -> str:
    return "yes" if flag else "no"


def collect(root: Path) -> dict:
    """``{run: results.json contents or None}`` for every run of :data:`RUNS` under ``root``."""
    out = {}
    for run, *_ in RUNS:
        path = root / run / "eval" / "results.json"
        out[run] = json.loads(path.read_text()) if path.is_file() else None
    return out


def _train_facts(root: Path, run: str) -> dict:
    """Last step, summed step time (s; excludes data loading between logged steps and checkpoint writes) and the
    mean losses over the last 50 ``log.jsonl`` records of a run (empty when the run has no log)."""
    log = root / run / "log.jsonl"
    if not log.is_file():
        return {}
    rows = [json.loads(ln) for ln in log.read_text().splitlines() if ln.strip()]
    if not rows:
        return {}
    tail = rows[-50:]
    facts = {"steps": rows[-1]["step"], "train_s": sum(r.get("step_time", 0.0) for r in rows)}
    for key in ("loss_gen", "loss_rec"):
        vals = [r[key] for r in tail if key in r]
        if vals:
            facts[key] = sum(vals) / len(vals)
    return facts


def to_markdown(results: dict, facts: dict) -> str:
    """Table 1 (MEt3R), Table 2 (V2C per data split) and self-consistency rows, one line per run, from
    :func:`collect`'s ``results`` and each run's :func:`_train_facts`."""

    def _missing(run: str) -> str:
        return "not evaluated" if facts.get(run) else "not run"

    lines = ["## Table 1 layout: generation (T2V)", "",
             "| run | paper row | L_gen | L_rec | steps | L_gen (last 50) | L_rec (last 50) | videos | "
             "MEt3R (lower = more consistent) | MEt3R points | FID | FVD |", "|---" * 12 + "|"]
    for run, row, gen, rec, _ in RUNS:
        res, run_facts = results.get(run), facts.get(run) or {}
        t2v = (res or {}).get("t2v") or {}
        videos = t2v.get("videos", "-" if res is not None else _missing(run))
        steps = run_facts.get("steps", "no log" if res is not None else "not run")
        lines.append(f"| {run} | {row} | {_mark(gen)} | {_mark(rec)} | {steps} | "
                     f"{_fmt(run_facts.get('loss_gen'))} | {_fmt(run_facts.get('loss_rec'))} | {videos} | "
                     f"{_fmt(t2v.get('MEt3R'))} | {t2v.get('MEt3R points', '-')} | {_fmt(t2v.get('FID'))} | "
                     f"{_fmt(t2v.get('FVD'))} |")
    splits = sorted({name for res in results.values() if res for name in res.get("v2c", {})})
    lines += ["", "## Table 2 layout: V2C (all frame pairs, mean over clips)", "",
              "| run | paper row | generator trainable | data | " + " | ".join(V2C_KEYS) + " |",
              "|---" * (4 + len(V2C_KEYS)) + "|"]
    for run, row, _, rec, trainable in RUNS:
        res = results.get(run)
        if not rec:
            continue
        if res is None or not res.get("v2c"):
            why = _missing(run) if res is None else "no V2C in its eval"
            lines.append(f"| {run} | {row} | {_mark(trainable)} | {why} |" + " |" * len(V2C_KEYS))
            continue
        for split in splits:
            mean = res.get("v2c", {}).get(split, {}).get("mean", {})
            lines.append(f"| {run} | {row} | {_mark(trainable)} | {split} | "
                         + " | ".join(_fmt(mean.get(k)) for k in V2C_KEYS) + " |")
    lines += ["", "## Self-consistency: T2V+C vs T2V -> V2C (degrees, (1 -> f) pairs, mean over videos)", "",
              "| run | videos | rot. diff. | trans. diff. |", "|---|---|---|---|"]
    for run, _, _, rec, _ in RUNS:
        t2v = ((results.get(run) or {}).get("t2v") or {})
        if rec:
            videos = t2v.get("videos", "no T2V in its eval" if results.get(run) is not None else _missing(run))
            lines.append(f"| {run} | {videos} | {_fmt(t2v.get('T2V+C vs T2V->V2C rot. diff.'))} "
                         f"| {_fmt(t2v.get('T2V+C vs T2V->V2C trans. diff.'))} |")
    return "\n".join(lines) + "\n"


@dataclass
class AblationSummaryConfig:
    """Where the ``make ablations`` runs live."""

    root: Path = Path("runs/ablations")
    """Folder holding ``base/``, ``frozen-rec/``, ``gen/``, ``joint/`` (each with ``eval/results.json``)."""


def main(argv: list[str] | None = None) -> None:
    """Write ``ablations.md`` / ``ablations.json`` under ``root`` and print the markdown.

    Raises:
        SystemExit: ``root`` does not exist.
    """
    cfg = tyro.cli(AblationSummaryConfig, args=argv, description=__doc__)
    if not cfg.root.is_dir():
        raise SystemExit(f"error: {cfg.root} does not exist; run `make ablations` first")
    results = collect(cfg.root)
    facts = {run: _train_facts(cfg.root, run) for run, *_ in RUNS}
    md = to_markdown(results, facts)
    (cfg.root / "ablations.json").write_text(json.dumps({"results": results, "training": facts}, indent=1))
    (cfg.root / "ablations.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
