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
    rows = [{"step": s, "loss_gen": 0.5, "loss_rec": 0.25, "step_time": 1.0} for s in range(1, steps + 1)]
    (folder / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_summary_tables_hold_the_eval_numbers_and_mark_missing_runs(tmp_path, capsys):
    _write_run(tmp_path, "base", met3r=0.2)
    _write_run(tmp_path, "joint", met3r=0.125, v2c=42.25, consistency=(0.5, 19.0), steps=7)
    main(["--root", str(tmp_path)])
    md = (tmp_path / "ablations.md").read_text()
    assert md == capsys.readouterr().out.rstrip("\n") + "\n"
    joint_t1 = next(ln for ln in md.splitlines() if ln.startswith("| joint | JOG3R") and "assets/jog3r-tiny" in ln)
    assert "| 7 |" in joint_t1 and "0.125" in joint_t1
    joint_t2 = next(ln for ln in md.splitlines() if ln.startswith("| joint |") and "clips16" in ln)
    assert joint_t2.endswith("| 42.2 |") or joint_t2.endswith("| 42.3 |")
    assert "| joint | 4 | 0.500 | 19.0 |" in md
    # frozen-rec and gen were never run: said so, no numbers invented
    assert "| frozen-rec | frozen OS + rec | no | not run |" in md
    assert any(ln.startswith("| gen | fine-tuned OS") and "not run" in ln for ln in md.splitlines())
    saved = json.loads((tmp_path / "ablations.json").read_text())
    assert saved["results"]["gen"] is None and saved["training"]["joint"]["steps"] == 7


def test_summary_needs_the_root_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="make ablations"):
        main(["--root", str(tmp_path / "nope")])
