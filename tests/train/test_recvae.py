"""RecVAE's own parts: the dense encoder, the composite prior, the KL weight per user, the
alternating phases and the previous epoch's frozen copy."""

import math

import pytest
import torch
from conftest import two_rated_rows

from aerec.train.config import ModelConfig
from aerec.train.kinds.recvae import (
    DECODER,
    ENCODER,
    RecVAE,
    RecVAENetwork,
    composite_log_prior,
    log_normal,
)
from aerec.train.loss import multinomial_nll, rating_weights
from aerec.train.model import RatedSetInput
from aerec.train.trainable import TrainStep


def _config(**changes: object) -> ModelConfig:
    settings: dict = {"n_items": 6, "hidden": [5, 5, 5, 3], "activation": "silu"}
    return ModelConfig(**(settings | changes))


def _training(model: RecVAE, seed: int) -> RecVAENetwork:
    """A fresh network of `model` in training mode, its epoch started."""
    torch.manual_seed(seed)
    network = model.new_network()
    assert isinstance(network, RecVAENetwork)
    network.train()
    model.start_epoch(network)
    return network


def test_the_encoder_adds_every_earlier_layer_under_layer_norm() -> None:
    torch.manual_seed(0)
    network = RecVAENetwork(_config(), RatedSetInput()).eval()
    rows = two_rated_rows()
    unit = (rows.dense() != 0).float()
    unit = unit / unit.norm(dim=1, keepdim=True)
    silu = torch.nn.functional.silu
    with torch.no_grad():
        h1 = network.norms[0](silu(network.encoder[0](unit)))
        h2 = network.norms[1](silu(network.encoder[1](h1) + h1))
        h3 = network.norms[2](silu(network.encoder[2](h2) + h1 + h2))
        mean = network.encoder[3](h3)[:, :3]
        by_hand = network.decoder[0](mean)  # one linear decoder layer, from the mean
        torch.testing.assert_close(network.forward_rows(rows), by_hand)
        torch.testing.assert_close(network.forward_sparse(rows.columns, rows.values), by_hand)
    assert len(network.decoder) == 1 and network.encoder[3].out_features == 6


def test_layers_of_unequal_width_are_refused() -> None:
    with pytest.raises(ValueError, match="one width"):
        RecVAENetwork(_config(hidden=[5, 4, 3]))
    with pytest.raises(ValueError, match="one width"):
        RecVAENetwork(_config(hidden=[3]))


def test_composite_prior_is_the_paper_mixture() -> None:
    """3/20 N(0, 1) + 3/4 N(m, v) + 1/10 N(0, e^10), computed here from the densities."""
    code = torch.tensor([[0.0, 1.5, -4.0]])
    mean, log_variance = torch.tensor([[0.5, 1.0, -2.0]]), torch.tensor([[0.0, -1.0, 2.0]])

    def density(x: float, m: float, v: float) -> float:
        return math.exp(-((x - m) ** 2) / (2 * v)) / math.sqrt(2 * math.pi * v)

    wanted = [
        math.log(
            3 / 20 * density(x, 0, 1)
            + 3 / 4 * density(x, m, math.exp(lv))
            + 1 / 10 * density(x, 0, math.exp(10))
        )
        for x, m, lv in zip(
            code[0].tolist(), mean[0].tolist(), log_variance[0].tolist(), strict=True
        )
    ]
    got = composite_log_prior(code, mean, log_variance)
    torch.testing.assert_close(got, torch.tensor([wanted]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        log_normal(torch.tensor(1.0), torch.tensor(0.0), torch.tensor(0.0)),
        torch.tensor(math.log(density(1.0, 0, 1))),
    )


def test_kl_term_is_gamma_times_each_users_weight() -> None:
    """loss - likelihood = mean over users of gamma * (sum of the user's likelihood
    weights) * (log q(z) - log p(z)) at the decoded sample."""
    gamma, below = 0.05, 0.5
    model = RecVAE(_config(kl_gamma=gamma, below_positive_weight=below))
    network = _training(model, seed=1)
    rows = two_rated_rows()
    step = TrainStep(epoch=1, step=0, epochs=1, phase=ENCODER)
    torch.manual_seed(2)
    loss = model.loss(network, rows, step)
    posterior = network.posterior
    assert posterior is not None
    torch.manual_seed(2)  # the same dropout mask and sample, without the KL term
    weights = rating_weights(rows.values, 4.0, below)
    likelihood = multinomial_nll(network.forward_rows(rows), rows.columns, weights)
    previous_mean, previous_log_variance = model._previous.posterior_rows(rows)  # type: ignore[union-attr]
    z = posterior.sample
    kl = log_normal(z, posterior.mean, posterior.log_variance) - composite_log_prior(
        z, previous_mean, previous_log_variance
    )
    # user 0: ratings 5 and 2 (weights 1 and 0.5); user 1: 4, 4, 1 (1, 1, 0.5)
    torch.testing.assert_close(weights.sum(dim=1), torch.tensor([1.5, 2.5]))
    wanted = (gamma * torch.tensor([1.5, 2.5]) * kl.sum(dim=1)).mean()
    torch.testing.assert_close(loss - likelihood, wanted)


def test_the_decoder_phase_trains_without_dropout_and_without_the_kl_term() -> None:
    model = RecVAE(_config(kl_gamma=0.5, input_dropout=0.5))
    network = _training(model, seed=0)
    rows = two_rated_rows()
    step = TrainStep(epoch=1, step=0, epochs=1, phase=DECODER)
    torch.manual_seed(3)
    decoder_loss = model.loss(network, rows, step)
    torch.manual_seed(3)  # the same sample; no dropout mask drawn in either
    undropped = network.forward_rows(rows, dropout=False)
    weights = (rows.values != 0).float()
    log_softmax = torch.log_softmax(undropped, dim=1).gather(1, rows.columns)
    torch.testing.assert_close(decoder_loss, -(weights * log_softmax).sum(dim=1).mean())


def test_phases_split_the_parameters_and_repeat_the_encoder() -> None:
    model = RecVAE(_config(encoder_passes=3))
    network = model.new_network()
    encoder, decoder = model.phases(network)
    assert (encoder.name, encoder.passes, decoder.name, decoder.passes) == (
        ENCODER,
        3,
        DECODER,
        1,
    )
    assert decoder.parameters == list(network.decoder.parameters())  # type: ignore[union-attr]
    together = {id(p) for p in encoder.parameters} | {id(p) for p in decoder.parameters}
    assert together == {id(p) for p in network.parameters()}
    assert not {id(p) for p in encoder.parameters} & {id(p) for p in decoder.parameters}


def test_the_prior_reads_the_network_as_it_was_before_the_epoch() -> None:
    model = RecVAE(_config())
    network = model.new_network()
    model.start_epoch(network)
    before = [p.detach().clone() for p in network.parameters()]
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(1.0)
    previous = model._previous
    assert previous is not None and not previous.training
    for kept, old in zip(previous.parameters(), before, strict=True):
        torch.testing.assert_close(kept, old)
        assert not kept.requires_grad
