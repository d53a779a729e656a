import itertools

import numpy as np
import pytest
import torch

from aerec.contracts import Progress
from aerec.data.csr import CsrMatrix
from aerec.data.idmap import IdMap
from aerec.data.split import split_frame
from aerec.data.synth import SynthConfig, generate
from aerec.errors import InputError
from aerec.train.config import ModelConfig, TrainConfig
from aerec.train.kinds.autoencoder import AutoEncoderKind
from aerec.train.kinds.multinomial import MultinomialAutoEncoder
from aerec.train.kinds.rating import RatingAutoEncoder
from aerec.train.metrics import mae, rmse
from aerec.train.model import Network
from aerec.train.rows import RatedRows
from aerec.train.trainer import TrainResult, autocast_dtype, resolve_device, train_network


def train_autoencoder(
    fit: CsrMatrix,
    validation: CsrMatrix,
    config: ModelConfig,
    train: TrainConfig,
    device: str = "cpu",
    progress: Progress | None = None,
    kind: type[AutoEncoderKind] = RatingAutoEncoder,
) -> TrainResult:
    """Train one model of `kind` (a rating autoencoder unless said)."""
    return train_network(kind(config), fit, validation, train, device, progress)


def matrices() -> tuple[CsrMatrix, CsrMatrix]:
    ratings, _ = generate(SynthConfig(users=150, items=60, ratings=3000, seed=2))
    split = split_frame(ratings, "random:0.1", seed=0)
    users, items = IdMap.from_ids(split.train["user_id"]), IdMap.from_ids(split.train["item_id"])
    return (
        CsrMatrix.from_frame(split.train, users, items),
        CsrMatrix.from_frame(split.test, users, items),
    )


def run(seed: int = 0, epochs: int = 30):  # type: ignore[no-untyped-def]
    fit, validation = matrices()
    config = ModelConfig(n_items=fit.n_cols, hidden=[32, 16])
    return train_autoencoder(
        fit,
        validation,
        config,
        TrainConfig(epochs=epochs, batch_size=16, lr=3e-3, seed=seed, patience=100),
        device="cpu",
    )


def test_loss_goes_down_and_beats_the_mean() -> None:
    result = run()
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    fit, validation = matrices()
    best = min(h["val_rmse"] for h in result.history)
    assert best < rmse(np.full(validation.nnz, fit.data.mean()), validation.data)
    assert result.history[result.best_epoch - 1]["val_rmse"] == best


def test_same_seed_same_result() -> None:
    first, again = run(seed=3, epochs=3), run(seed=3, epochs=3)
    assert [h["val_rmse"] for h in first.history] == [h["val_rmse"] for h in again.history]


def test_metric_functions_exact() -> None:
    predicted, actual = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 2.0])
    assert rmse(predicted, actual) == pytest.approx(np.sqrt(5 / 3))
    assert mae(predicted, actual) == pytest.approx(1.0)


def test_device_resolution() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(InputError):
        resolve_device("tpu")


def test_precision_resolution() -> None:
    """auto is bfloat16 on a GPU that has it and never on a CPU; asked, bf16 is anywhere."""
    assert autocast_dtype("auto", "cpu") is None
    assert autocast_dtype("fp32", "cuda") is None
    assert autocast_dtype("bf16", "cpu") == torch.bfloat16
    with pytest.raises(InputError, match="--precision 'fp8'"):
        autocast_dtype("fp8", "cpu")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bf16_training_runs_the_products_in_bfloat16_and_learns(precision: str) -> None:
    """Under bf16 the network computes in bfloat16 (its training output, seen by a
    wrapper), the weights stay float32, and the loss still falls."""
    fit, validation = matrices()
    model = MultinomialAutoEncoder(ModelConfig(n_items=fit.n_cols, hidden=[16]))
    seen: set[torch.dtype] = set()
    original = model.new_network

    def hooked() -> Network:
        network = original()
        forward_rows = network.forward_rows

        def recorded(rows: RatedRows, dropout: bool = True) -> torch.Tensor:
            output = forward_rows(rows, dropout)
            seen.add(output.dtype)
            return output

        network.forward_rows = recorded  # type: ignore[method-assign]
        return network

    model.new_network = hooked  # type: ignore[method-assign]
    train = TrainConfig(epochs=4, batch_size=16, lr=3e-3, precision=precision)
    result = train_network(model, fit, validation, train, "cpu")
    losses = [h["train_loss"] for h in result.history]
    assert seen == {torch.bfloat16 if precision == "bf16" else torch.float32}
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert {p.dtype for p in result.network.parameters()} == {torch.float32}


@pytest.mark.parametrize(
    "settings",
    [{"optimizer": "sgd", "lr": 0.01}, {"refeed": True}, {"l2": 1e-3}, {"lr_decay": 0.5}],
)
def test_optimiser_options_train(settings: dict) -> None:
    fit, validation = matrices()
    config = ModelConfig(n_items=fit.n_cols, hidden=[16], tied=True)
    result = train_autoencoder(
        fit, validation, config, TrainConfig(epochs=3, batch_size=32, **settings), "cpu"
    )
    losses = [h["train_loss"] for h in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_multinomial_model_selects_on_ndcg() -> None:
    fit, validation = matrices()
    config = ModelConfig(n_items=fit.n_cols, hidden=[16])
    result = train_autoencoder(
        fit, validation, config, TrainConfig(epochs=2), "cpu", kind=MultinomialAutoEncoder
    )
    assert result.validation_metric == "val_ndcg@10"
    assert 0.0 <= result.history[0]["val_ndcg@10"] <= 1.0


def test_unknown_optimizer() -> None:
    fit, validation = matrices()
    with pytest.raises(InputError):
        train_autoencoder(
            fit, validation, ModelConfig(n_items=fit.n_cols), TrainConfig(optimizer="lbfgs"), "cpu"
        )


def test_progress_shows_last_epoch_loss_and_validation() -> None:
    fit, validation = matrices()
    seen: list[tuple[str, int]] = []

    def progress(steps, description, total):  # type: ignore[no-untyped-def]
        seen.append((description, total))
        return steps

    train_autoencoder(
        fit,
        validation,
        ModelConfig(n_items=fit.n_cols, hidden=[8]),
        TrainConfig(epochs=2, batch_size=50),
        "cpu",
        progress,
    )
    assert seen[0] == ("epoch 1/2", 3)  # 150 users in batches of 50
    assert seen[1][0].startswith("epoch 2/2 (last: loss ") and "val_rmse" in seen[1][0]


def test_the_loss_sees_where_training_is() -> None:
    """A kind's loss gets each batch's TrainStep (the clock of a KL annealing schedule):
    epochs from 1, batches counted over every epoch, progress from 0."""
    from aerec.train.trainable import Phase, Selection, TrainStep

    fit, validation = matrices()
    seen: list[TrainStep] = []
    inner = RatingAutoEncoder(ModelConfig(n_items=fit.n_cols, hidden=[4]))

    class Recording:
        selection = Selection("val_rmse", higher_is_better=False)

        def new_network(self) -> Network:
            return inner.new_network()

        def phases(self, network: Network) -> list[Phase]:
            return inner.phases(network)

        def start_epoch(self, network: Network) -> None:
            inner.start_epoch(network)

        def loss(self, network: Network, batch: RatedRows, step: TrainStep) -> torch.Tensor:
            seen.append(step)
            return inner.loss(network, batch, step)

        def validate(self, network: Network, *args: object) -> float:
            return inner.validate(network, *args)  # type: ignore[arg-type]

    config = TrainConfig(epochs=3, batch_size=50, patience=10)
    train_network(Recording(), fit, validation, config, "cpu")
    per_epoch = -(-int((fit.row_counts() > 0).sum()) // 50)
    assert [s.step for s in seen] == list(range(3 * per_epoch))
    assert [s.epoch for s in seen] == [e for e in (1, 2, 3) for _ in range(per_epoch)]
    assert [s.progress for s in seen[::per_epoch]] == [0.0, 1 / 3, 2 / 3]


def test_phases_update_only_their_parameters_in_order() -> None:
    """An epoch of two phases (2 passes updating the encoder, then 1 the decoder): each
    batch's loss sees its phase, only that phase's parameters take gradients and change,
    start_epoch comes before each epoch's first batch, and the progress bar counts every
    pass."""
    from aerec.train.model import AutoEncoder
    from aerec.train.trainable import Phase, Selection, TrainStep

    fit, _ = matrices()
    inner = RatingAutoEncoder(ModelConfig(n_items=fit.n_cols, hidden=[4]))
    events: list[tuple[str, ...]] = []
    networks: list[AutoEncoder] = []
    states: list[tuple[str, dict[str, torch.Tensor]]] = []

    class TwoPhases:
        selection = Selection("val_rmse", higher_is_better=False)

        def new_network(self) -> Network:
            network = inner.new_network()
            assert isinstance(network, AutoEncoder)
            networks.append(network)
            return network

        def phases(self, network: Network) -> list[Phase]:
            assert isinstance(network, AutoEncoder) and network.decoder is not None
            return [
                Phase("encoder", list(network.encoder.parameters()), passes=2),
                Phase("decoder", list(network.decoder.parameters())),
            ]

        def start_epoch(self, network: Network) -> None:
            events.append(("start", str(network.training)))

        def loss(self, network: Network, batch: RatedRows, step: TrainStep) -> torch.Tensor:
            trained = tuple(
                n.split(".")[0] for n, p in network.named_parameters() if p.requires_grad
            )
            events.append((step.phase, *sorted(set(trained))))
            states.append((step.phase, {k: v.clone() for k, v in network.state_dict().items()}))
            return inner.loss(network, batch, step)

        def validate(self, network: Network, *args: object) -> float:
            return inner.validate(network, *args)  # type: ignore[arg-type]

    totals: list[int] = []

    def progress(steps, description, total):  # type: ignore[no-untyped-def]
        totals.append(total)
        return steps

    result = train_network(
        TwoPhases(), fit, None, TrainConfig(epochs=2, batch_size=50), "cpu", progress
    )
    per_pass = -(-int((fit.row_counts() > 0).sum()) // 50)
    epoch = [("start", "True")]
    epoch += [("encoder", "encoder")] * (2 * per_pass) + [("decoder", "decoder")] * per_pass
    assert events == epoch * 2
    assert totals == [3 * per_pass] * 2
    assert all(p.requires_grad for p in result.network.parameters())  # restored after training
    # between two batches of one phase the other phase's weights stay as they were, and
    # the phase's own move
    for (phase, before), (same, after) in itertools.pairwise(states):
        if phase != same:
            continue
        for name in before:
            moved = not torch.equal(before[name], after[name])
            assert moved == name.startswith(phase), (phase, name)
