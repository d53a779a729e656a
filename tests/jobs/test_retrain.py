"""The weekly retrain: versions switched by one link, a gate judged against its noise,
and any kill leaving a complete current version."""

import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_metrics_file import parsed

from aerec.contracts import (
    CANDIDATES_DIR,
    CURRENT_LINK,
    MODEL_FILE,
    OWNED_MODELS,
    VERSIONS_DIR,
    run_stamp,
)
from aerec.data.split import load_split
from aerec.errors import InputError
from aerec.io.stamped import stamped_dirs
from aerec.jobs.gate import compare_models
from aerec.jobs.metrics import with_metrics
from aerec.jobs.report import write_report
from aerec.jobs.retrain import RetrainOptions, current_version, promote, retrain
from aerec.jobs.status import directory_status

SPLIT = "random:0.2"


def run_retrain(data: Path, model_dir: Path, **options: object) -> dict[str, object]:
    settings = RetrainOptions(split=SPLIT, device="cpu", k=5, **options)  # type: ignore[arg-type]
    return retrain(data, model_dir, settings)


def assert_consistent(model_dir: Path) -> Path | None:
    """current is absent or a complete version, and the fixed names lead into it."""
    version = current_version(model_dir)
    if version is None:
        assert not (model_dir / MODEL_FILE).exists()
        return None
    assert version.parent.name == VERSIONS_DIR
    if (model_dir / MODEL_FILE).exists():
        assert (model_dir / MODEL_FILE).read_bytes() == (version / MODEL_FILE).read_bytes()
    return version


@pytest.fixture(scope="module")
def promoted(tiny_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory after one retrain (a template: tests copy it)."""
    model_dir = tmp_path_factory.mktemp("model")
    outcome = run_retrain(tiny_data[0], model_dir)
    assert outcome["promoted"] is True and "gate" not in outcome
    assert outcome["refit"]["ratings"] == 3000  # the promoted model saw every rating
    return model_dir


def copy_of(promoted: Path, tmp_path: Path) -> Path:
    model_dir = tmp_path / "model"
    shutil.copytree(promoted, model_dir, symlinks=True)
    return model_dir


def test_layout_after_the_first_promotion(promoted: Path) -> None:
    version = assert_consistent(promoted)
    assert version is not None
    assert os.readlink(promoted / CURRENT_LINK) == f"{VERSIONS_DIR}/{version.name}"
    assert os.readlink(promoted / MODEL_FILE) == f"{CURRENT_LINK}/{MODEL_FILE}"
    assert os.readlink(promoted / "checkpoint") == f"{CURRENT_LINK}/checkpoint"
    assert list((promoted / CANDIDATES_DIR).iterdir()) == []
    report = directory_status(promoted)
    assert report["healthy"] and report["kind"] == OWNED_MODELS
    assert report["current"]["name"] == version.name
    assert report["last_attempt"]["version"] == version.name
    assert report["last_attempt"]["promoted"] is True


def test_gate_refuses_a_worse_model_and_passes_an_equal_one(
    promoted: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    model_dir = copy_of(promoted, tmp_path)
    before = (model_dir / MODEL_FILE).read_bytes()
    # The second seed's MSE model ranks rarely rated items first: far below the default.
    prom = tmp_path / "aerec_retrain.prom"
    kept = with_metrics(
        prom, "retrain", lambda: run_retrain(tiny_data[0], model_dir, preset="seed-ml1m")
    )
    worse = dict(kept)
    gate = worse["gate"]
    assert isinstance(gate, dict)
    metrics = parsed(prom)
    assert metrics["aerec_retrain_promoted"] == {(): 0.0}
    assert metrics["aerec_retrain_candidate_ndcg"] == {(): gate["candidate"]}
    assert metrics["aerec_retrain_current_ndcg"] == {(): gate["current"]}
    assert metrics["aerec_retrain_model_info"] == {(("model_version", worse["current"]),): 1.0}
    assert metrics["aerec_retrain_last_run_success"] == {(): 1.0}
    assert worse["promoted"] is False and gate["difference"] < -gate["allowed"] < 0
    assert (model_dir / MODEL_FILE).read_bytes() == before
    assert [p.name for p in (model_dir / CANDIDATES_DIR).iterdir()] == [worse["candidate"]]
    # The same preset, data and seed: the same model, a difference of exactly 0.
    same = run_retrain(tiny_data[0], model_dir)
    assert same["promoted"] is True and same["gate"] == {
        **same["gate"],  # type: ignore[dict-item]
        "difference": 0.0,
        "passed": True,
    }
    assert os.readlink(model_dir / CURRENT_LINK) == f"{VERSIONS_DIR}/{same['version']}"


def test_gate_on_identical_models_has_no_spread(
    promoted: Path, tiny_data: tuple[Path, Path]
) -> None:
    model = promoted / MODEL_FILE
    result = compare_models(model, model, load_split(tiny_data[0], SPLIT), k=5, device="cpu")
    assert (result.difference, result.standard_error, result.passed) == (0.0, 0.0, True)
    assert result.users > 50 and 0 < result.current == result.candidate


@pytest.mark.parametrize("tolerance", [float("nan"), -0.1, float("inf")])
def test_tolerance_must_be_a_finite_non_negative_number(
    tolerance: float, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="--tolerance"):
        run_retrain(tiny_data[0], tmp_path, tolerance=tolerance)


def test_an_older_layout_or_a_broken_link_is_refused_before_training(
    tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    (tmp_path / MODEL_FILE).write_bytes(b"a model aerec did not write here")
    with pytest.raises(InputError, match="not an aerec model-versions directory"):
        run_retrain(tiny_data[0], tmp_path)
    assert (tmp_path / MODEL_FILE).read_bytes() == b"a model aerec did not write here"
    (tmp_path / MODEL_FILE).unlink()
    (tmp_path / ".aerec").write_text('{"owner": "aerec", "kind": "model-versions"}\n')
    os.symlink(f"{VERSIONS_DIR}/gone", tmp_path / CURRENT_LINK)
    with pytest.raises(InputError, match="not a directory"):
        run_retrain(tiny_data[0], tmp_path)
    assert not (tmp_path / CANDIDATES_DIR).exists()


def promote_and_die_at(step: int, candidate: Path, model_dir: Path) -> None:
    """In a forked child: promote, but die like kill -9 (no clean-up) at the step-th
    file-system change (a rename, a replace, a new link)."""
    calls = 0

    def dying(real):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal calls
            if calls == step:
                os._exit(137)
            calls += 1
            return real(*args, **kwargs)

        return call

    os.rename, os.replace, os.symlink = (dying(f) for f in (os.rename, os.replace, os.symlink))
    promote(candidate, model_dir)
    os._exit(0)


def fresh_candidate(template: Path, model_dir: Path) -> Path:
    candidate = model_dir / CANDIDATES_DIR / run_stamp()
    shutil.copytree(template, candidate)
    return candidate


@pytest.mark.parametrize("first", [True, False], ids=["first-promotion", "later-promotion"])
def test_a_kill_at_every_step_of_promotion_leaves_one_version_current(
    first: bool, promoted: Path, tmp_path: Path
) -> None:
    template = current_version(promoted)
    assert template is not None
    fork = multiprocessing.get_context("fork")
    for step in range(10):
        model_dir = tmp_path / f"step{step}"
        if first:
            model_dir.mkdir()
        else:
            shutil.copytree(promoted, model_dir, symlinks=True)
        before = current_version(model_dir)
        candidate = fresh_candidate(template, model_dir)
        child = fork.Process(target=promote_and_die_at, args=(step, candidate, model_dir))
        child.start()
        child.join()
        after = assert_consistent(model_dir)
        assert after is not None or before is None
        if child.exitcode == 0:  # every step passed: the candidate is current
            assert after is not None and after.name == candidate.name
            assert (model_dir / MODEL_FILE).exists()
            break
        assert child.exitcode == 137
        # the next promotion repairs whatever the kill left, and finds a version to compare
        promote(fresh_candidate(template, model_dir), model_dir)
        assert assert_consistent(model_dir) is not None and (model_dir / MODEL_FILE).exists()
    else:
        pytest.fail("promotion takes more steps than the test kills at")


def retrain_cmd(ratings: Path, model_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "aerec",
        "retrain",
        "--ratings",
        str(ratings),
        "--model-dir",
        str(model_dir),
        "--split",
        SPLIT,
        "--k",
        "5",
        "--device",
        "cpu",
        *extra,
    ]


@pytest.mark.slow
def test_killed_retrains_leave_a_current_version_and_the_gate_still_compares(
    promoted: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """SIGKILL and SIGTERM at varied moments of real retrain processes; then a worse
    candidate is refused."""
    model_dir = copy_of(promoted, tmp_path)
    outcomes = []
    for delay, signum in [(0.5, 9), (1.5, 15), (2.5, 9), (3.5, 15), (4.5, 9), (6.0, 15)]:
        # A SIGKILLed run may leave a staging directory in its unfinished candidate (removed
        # by the next promotion's pruning); a terminated run must leave none of its own.
        before = {p for p in model_dir.rglob(".*") if p.name != ".lock"}
        process = subprocess.Popen(
            retrain_cmd(tiny_data[0], model_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        time.sleep(delay)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
        outcomes.append(process.returncode)
        if process.returncode == 143:
            assert "terminated" in stderr.decode().strip().splitlines()[-1]
        assert assert_consistent(model_dir) is not None
        leftovers = [p for p in model_dir.rglob(".*") if p.name != ".lock" and p not in before]
        if process.returncode == 143:
            assert leftovers == []
    assert {-9, 143} <= set(outcomes), outcomes  # both signals landed mid-run at least once
    killed = model_dir / CANDIDATES_DIR / run_stamp()  # as a SIGKILL during training leaves it
    (killed / ".checkpoint.x1y2z3").mkdir(parents=True)
    result = subprocess.run(
        retrain_cmd(tiny_data[0], model_dir, "--preset", "seed-ml1m"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert '"promoted": false' in result.stdout and '"gate"' in result.stdout
    # Killed runs' unfinished candidates are gone though nothing was promoted.
    assert not killed.exists()
    candidates = stamped_dirs(model_dir / CANDIDATES_DIR)
    assert candidates and all((c / MODEL_FILE).is_file() for c in candidates)


def test_ratings_with_shuffled_item_ids_are_not_trained_on(
    promoted: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    from conftest import shuffled_ids

    model_dir = copy_of(promoted, tmp_path)
    before = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*"))
    shuffled = shuffled_ids(tiny_data[0], tmp_path / "shuffled.csv")
    with pytest.raises(InputError, match=r"do not look like the data the model was trained on"):
        run_retrain(shuffled, model_dir)  # refused before anything is trained
    assert sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*")) == before


def test_the_refit_reuses_the_candidates_epochs(
    tiny_data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three training passes: the candidate's selection on its validation slice, its refit
    on the split's train side, and the promoted model trained once on every rating for the
    epochs the candidate kept (no second selection)."""
    from aerec.train.kinds import autoencoder

    calls: list[tuple[int, bool, int]] = []
    real = autoencoder.train_network

    def counted(model: Any, rows: Any, validation: Any, config: Any, *rest: Any) -> Any:
        calls.append((rows.nnz, validation is not None, config.epochs))
        return real(model, rows, validation, config, *rest)

    monkeypatch.setattr(autoencoder, "train_network", counted)
    outcome = run_retrain(tiny_data[0], tmp_path / "model")
    kept = outcome["validation"]["best_epoch"]  # type: ignore[index]
    assert len(calls) == 3
    assert [selecting for _, selecting, _ in calls] == [True, False, False]
    assert calls[2] == (3000, False, kept[0])  # every rating, the candidate's epochs
    assert outcome["refit"] == {"ratings": 3000, "epochs": kept}


def test_a_model_directory_report_shows_the_curves_and_the_gate(
    promoted: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    from conftest import browser_dom
    from test_report import PNG, embedded_images

    model_dir = copy_of(promoted, tmp_path)
    judged = run_retrain(tiny_data[0], model_dir)  # judged against the first version
    page = write_report(model_dir, tmp_path / "report.html")
    images = embedded_images(page)
    assert len(images) == 2 and all(image.startswith(PNG) for image in images)
    assert f"{str(judged['candidate'])[:15]}: promoted" in page.read_text()
    assert "2 of 2 figures shown." in browser_dom(page)
