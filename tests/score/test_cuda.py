"""CUDA where torch's CUDA build works, and one line naming what is missing where not;
the IO-bound batch path that a GPU run uses, on whichever provider this host has."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aerec.contracts import GRAPH_OUTPUTS
from aerec.errors import InputError
from aerec.score import session
from aerec.score.batch import UserBatch, graph_feed
from aerec.score.scorer import BatchScorer
from aerec.score.session import CUDA, cuda_usable, provider_library_problem
from aerec.score.vectors import build_user_vectors

GPU = cuda_usable()  # computed once: the GPU cases run wherever a GPU is


@pytest.fixture
def fresh_cuda_check() -> Iterator[None]:
    """cuda_problem() asked again, not from this process's cache (and after the test)."""
    session.cuda_problem.cache_clear()
    yield
    session.cuda_problem.cache_clear()


def test_a_library_that_does_not_load_is_named_with_how_to_get_it(tmp_path: Path) -> None:
    broken = tmp_path / "libcudnn.so.9"
    broken.write_bytes(b"not a shared library")
    problem = provider_library_problem(broken)
    assert problem is not None
    assert problem.startswith("libcudnn.so.9 does not load: install the CUDA build of torch")


@pytest.mark.parametrize("gpu", [GPU])
def test_cuda_is_used_where_usable_and_a_missing_library_named_where_not(
    gpu: bool, tiny_model: Path
) -> None:
    """On a GPU host the session runs on CUDA. Elsewhere the provider's own library names
    the CUDA library it lacks, by its file name (here: onnxruntime-gpu, no CUDA libraries)."""
    if gpu:
        assert session.open_session(tiny_model, "cuda")[2] == CUDA
        return
    problem = provider_library_problem()
    assert problem is not None
    assert problem.split(" ")[0].startswith("lib") and ".so" in problem.split(" ")[0]


def test_the_libraries_torch_ships_are_loaded_before_the_provider_is_checked(
    monkeypatch: pytest.MonkeyPatch, fresh_cuda_check: None
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(session.ort, "get_available_providers", lambda: [CUDA, session.CPU])
    monkeypatch.setattr(session, "_driver_loads", lambda: True)
    monkeypatch.setattr(
        session.ort, "preload_dlls", lambda **kinds: calls.append(f"preload {sorted(kinds)}")
    )
    monkeypatch.setattr(session, "provider_library_problem", lambda: calls.append("provider"))
    assert session.cuda_problem() is None
    assert calls == ["preload ['cuda', 'cudnn', 'msvc']", "provider"]


def test_device_cuda_says_what_is_missing(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch, fresh_cuda_check: None
) -> None:
    monkeypatch.setattr(session.ort, "get_available_providers", lambda: [CUDA, session.CPU])
    monkeypatch.setattr(session, "_driver_loads", lambda: True)
    monkeypatch.setattr(session.ort, "preload_dlls", lambda **kinds: None)
    monkeypatch.setattr(
        session, "provider_library_problem", lambda: "libcublasLt.so.13 does not load: install"
    )
    with pytest.raises(InputError) as raised:
        session.open_session(tiny_model, "cuda")
    assert str(raised.value) == (
        "--device cuda: CUDA is not usable here: libcublasLt.so.13 does not load: install"
    )
    session.cuda_problem.cache_clear()
    monkeypatch.setattr(session, "_driver_loads", lambda: False)
    with pytest.raises(InputError, match=r"no NVIDIA driver on this host \(libcuda.so.1"):
        session.open_session(tiny_model, "cuda")


def test_a_provider_failing_on_a_missing_library_names_it(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = session.ort.InferenceSession

    def failing_on_cuda(data: bytes, options: object, providers: list[str]) -> object:
        if CUDA in providers:
            raise RuntimeError("Failed to load libcudnn.so.9: cannot open shared object file")
        return real(data, options, providers=providers)

    monkeypatch.setattr(session, "cuda_usable", lambda: True)
    monkeypatch.setattr(session.ort, "InferenceSession", failing_on_cuda)
    with pytest.raises(InputError, match=r"\(libcudnn.so.9 does not load: install the CUDA build"):
        session.open_session(tiny_model, "cuda")


@pytest.mark.parametrize("gpu", [GPU])
def test_a_batch_runs_through_io_binding_on_the_providers_device(
    gpu: bool, tiny_model: Path, tiny_data: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inputs bound on the provider's device, outputs copied back: the same scores and
    items as a plain run, without session.run."""
    import polars as pl

    scorer = BatchScorer(tiny_model, "auto")
    assert scorer.device == ("cuda" if gpu else "cpu")
    frame = pl.read_csv(tiny_data[0]).rename({"userId": "user_id", "movieId": "item_id"})
    vectors = build_user_vectors(frame.head(400), scorer.info.items, "ratings")
    batch = UserBatch(vectors.users.ids, vectors.ratings)
    want = scorer.session.run(list(GRAPH_OUTPUTS), graph_feed(batch))

    def no_plain_run(*args: object) -> None:
        raise AssertionError("session.run was called")

    monkeypatch.setattr(scorer.session, "run", no_plain_run)
    scores, items = scorer(batch)
    np.testing.assert_allclose(scores, want[0], rtol=1e-5)
    assert np.array_equal(items, want[1])


def test_the_cuda_batch_default_fits_its_memory_budget() -> None:
    from aerec.contracts import CPU_BATCH_SIZE, CUDA_BATCH_MEMORY, MAX_BATCH_SIZE, cuda_batch_size

    assert cuda_batch_size(59_047) == 2_444  # README's figure
    per_user = 4 * (3 * 59_047 + 256 * 1024)
    assert 2_444 * per_user <= CUDA_BATCH_MEMORY < 2_445 * per_user
    assert cuda_batch_size(10_000_000) == CPU_BATCH_SIZE  # never below the CPU's
    assert cuda_batch_size(1) <= MAX_BATCH_SIZE


@pytest.mark.parametrize("gpu", [GPU])
def test_batch_size_defaults_to_the_providers(gpu: bool, tiny_model: Path) -> None:
    from aerec.contracts import CPU_BATCH_SIZE, cuda_batch_size

    scorer = BatchScorer(tiny_model, "auto")
    default = cuda_batch_size(len(scorer.info.items)) if gpu else CPU_BATCH_SIZE
    assert scorer.users_per_batch(None) == default
    assert scorer.users_per_batch(7) == 7
