"""The ablation summary reports what the runs' eval folders hold, and "not run" for what is missing."""

import json

import pytest

from jog3r.train.ablations import main


def _write_run(root, run, *, met3r, v2c=None, consistency=None, steps=10):
    folder = root / run
    (folder / "eval").mkdir(parents=True)
    t2v = {"videos": 4, "MEt3R": met3r, "MEt3R points": "assets/jog3r-tiny", "FID": "not available (pass --inception)",
           "FVD": "not available (pass --i3d)"}
    if consistency:
        t2v["T2V+C vs T2V->V2C rot. diff."], t2v["T2V+C vs T2V->V2C trans. diff."] = consistency
    res = {"model": "model", "v2c": {}, "t2v": t2v}
    if v2c is not None:
        res["v2c"]["RealEstate10K clips16_384x256"] = {"clips": {}, "mean": {
            "Rot. err.": 1.5, "Trans. err.": 20.0, "RRA@5": 90.0, "RTA@5": 10.0, "mAA@30": v2c}}
    (folder / "eval" / "results.json").write_text(json.dumps(res))
    # losses fall with the step: the table must show the mean of the last 50 records, not of all of them
    rows = [{"step": s, "loss_gen": 1.0 if s <= steps - 50 else 0.5, "loss_rec": 2.0 if s <= steps - 50 else 0.25,
             "step_time": 1.0} for s in range(1, steps + 1)]
    (folder / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_summary_tables_hold_the_eval_numbers_and_mark_missing_runs(tmp_path, capsys):
    _write_run(tmp_path, "base", met3r=0.2)
    _write_run(tmp_path, "joint", met3r=0.125, v2c=42.25, consistency=(0.5, 19.0), steps=70)
    (tmp_path / "gen").mkdir()  # trained (it has a log) but not evaluated
    (tmp_path / "gen" / "log.jsonl").write_text('{"step": 3, "loss_gen": 0.75, "step_time": 1.0}\n')
    main(["--root", str(tmp_path)])
    md = (tmp_path / "ablations.md").read_text()
    assert md == capsys.readouterr().out.rstrip("\n") + "\n"
    joint_t1 = next(ln for ln in md.splitlines() if ln.startswith("| joint | JOG3R") and "assets/jog3r-tiny" in ln)
    assert "| 70 | 0.5000 | 0.2500 | 4 | 0.1250 |" in joint_t1
    base_t1 = next(ln for ln in md.splitlines() if ln.startswith("| base |"))
    assert "| yes | no | 10 |" in base_t1 and "0.2000" in base_t1
    joint_t2 = next(ln for ln in md.splitlines() if ln.startswith("| joint |") and "clips16" in ln)
    assert joint_t2.endswith("| 42.2 |") or joint_t2.endswith("| 42.3 |")
    assert "| joint | 4 | 0.5000 | 19.0 |" in md
    # frozen-rec and gen were never run: said so, no numbers invented
    assert "| frozen-rec | frozen OS + rec | no | not run |" in md
    gen_t1 = next(ln for ln in md.splitlines() if ln.startswith("| gen | fine-tuned OS"))
    assert "| 3 | 0.7500 | - | not evaluated |" in gen_t1
    # generation-only runs have no V2C or self-consistency rows
    t2, consistency = md.split("## Table 2")[1].split("## Self-consistency")
    assert "| base |" not in t2 and "| gen |" not in t2 and "| base |" not in consistency
    saved = json.loads((tmp_path / "ablations.json").read_text())
    assert saved["results"]["gen"] is None and saved["training"]["joint"]["steps"] == 70


def test_summary_needs_the_root_folder(tmp_path):
    with pytest.raises(SystemExit, match="make ablations"):
        main(["--root", str(tmp_path / "nope")])
