"""`tacit eval` and `tacit train` end to end on tiny data sets in the public formats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cli import eval as eval_command
from cli import train as train_command
from tests.pipelines.commands import run_command


def test_eval_writes_scores_report_and_a_json_last_line(
    cmu_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a CMU-format file with 3 subjects
    scores, report = tmp_path / "scores.csv", tmp_path / "report"
    # when the committed keystroke model is evaluated on it
    rc = run_command(
        eval_command,
        [
            "eval",
            "keystroke",
            "--data",
            str(cmu_dir),
            "--scores-out",
            str(scores),
            "--report",
            str(report),
            "--json",
        ],
    )
    # then one CSV row per comparison, the report files, and the summary as the last stdout line
    assert rc == 0
    rows = list(csv.DictReader(scores.open()))
    assert list(rows[0]) == ["subject", "claimed", "probe", "genuine", "score"]
    assert len(rows) == 3 * 200 + 3 * 2 * 5
    assert sum(r["genuine"] == "1" for r in rows) == 600
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (
        summary["factor"] == "keystroke"
        and summary["subjects"] == 3
        and summary["comparisons"] == 630
    )
    assert 0.0 <= summary["eer"] <= 1.0 and 0.0 <= summary["baseline_eer"] <= 1.0
    assert {p.name for p in report.iterdir()} == {"report.json", "report.md", "det.png"}
    names = set(json.loads((report / "report.json").read_text())["scorers"])
    assert names == {"keystroke-enc-3", "baseline: scaled-manhattan"}


def test_eval_of_a_missing_folder_or_wrong_format_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run_command(
            eval_command,
            [
                "eval",
                "face",
                "--data",
                str(tmp_path / "nope"),
                "--scores-out",
                str(tmp_path / "s.csv"),
            ],
        )
        == 2
    )
    (tmp_path / "DSL-StrongPasswordData.csv").write_text("not,the,format\n")
    assert (
        run_command(
            eval_command,
            ["eval", "keystroke", "--data", str(tmp_path), "--scores-out", str(tmp_path / "s.csv")],
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "does not exist" in err and "format" in err and "Traceback" not in err


def test_face_eval_on_a_tiny_orl_tree(
    orl_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = run_command(
        eval_command,
        [
            "eval",
            "face",
            "--data",
            str(orl_dir.parent),
            "--scores-out",
            str(tmp_path / "s.csv"),
            "--json",
        ],
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["comparisons"] == 3 * 5 + 3 * 2 * 5


@pytest.mark.slow
def test_train_writes_weights_that_load(
    cmu_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a short training schedule on the tiny file
    from pipelines.keystroke import load
    from pipelines.keystroke import train as trainer

    monkeypatch.setitem(trainer.HPARAMS, "steps", 3)
    out = tmp_path / "w"
    # when
    assert (
        run_command(
            train_command, ["train", "keystroke", "--data", str(cmu_dir), "--out", str(out)]
        )
        == 0
    )
    # then the weights load and a second run with the same seed writes the same calibration
    assert load(weights_dir=out).model_version == "keystroke-enc-3"
    first = (out / "calibration.json").read_text()
    assert (
        run_command(
            train_command, ["train", "keystroke", "--data", str(cmu_dir), "--out", str(out)]
        )
        == 0
    )
    assert (out / "calibration.json").read_text() == first


@pytest.mark.slow
def test_eval_with_folds_trains_on_the_other_folds_and_says_who_was_held_out(
    cmu_dir_4: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given a CMU-format file with 4 subjects and a short training schedule
    from pipelines.keystroke import train as trainer

    monkeypatch.setitem(trainer.HPARAMS, "steps", 3)
    report = tmp_path / "report"
    # when it is evaluated with 2 folds by subject
    rc = run_command(
        eval_command,
        [
            "eval",
            "keystroke",
            "--data",
            str(cmu_dir_4),
            "--folds",
            "2",
            "--report",
            str(report),
            "--json",
        ],
    )
    # then every subject is scored once, by the model trained on the other fold
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["subjects"] == 4 and len(summary["folds"]) == 2
    method = json.loads((report / "report.json").read_text())["method"]
    assert [f["held_out"] for f in method["folds"]] == [["s002", "s004"], ["s003", "s005"]]
    assert (report / "det.png").is_file()
