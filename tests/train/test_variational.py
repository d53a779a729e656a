"""Mult-VAE's own parts: the code's mean scores, a sample trains, beta anneals."""

import pytest
import torch
from conftest import two_rated_rows

from aerec.train.config import ModelConfig
from aerec.train.kinds.variational import VariationalAutoEncoder, VariationalMultinomial
from aerec.train.model import RatedSetInput
from aerec.train.trainable import TrainStep


@pytest.mark.parametrize("hidden", [[4], [5, 3]])
def test_scoring_decodes_the_mean_and_training_a_sample(hidden: list[int]) -> None:
    torch.manual_seed(0)
    config = ModelConfig(n_items=6, hidden=hidden, activation="tanh")
    network = VariationalAutoEncoder(config, RatedSetInput())
    code = hidden[-1]
    assert network.encoder[-1].out_features == 2 * code  # mean and log variance
    rows = two_rated_rows()
    network.eval()
    with torch.no_grad():
        scored = network.forward_rows(rows)
        torch.testing.assert_close(network.forward_rows(rows), scored)  # no sampling
        torch.testing.assert_close(network(rows.dense()), scored)
        torch.testing.assert_close(network.forward_sparse(rows.columns, rows.values), scored)
        # by hand: the code's mean, through the decoder
        unit = (rows.dense() != 0).float()
        unit = unit / unit.norm(dim=1, keepdim=True)
        hidden_value = network.encoder[0](unit)
        for layer in network.encoder[1:]:
            hidden_value = layer(torch.tanh(hidden_value))
        mean = hidden_value[:, :code]
        decoded = network.decoder[-1](
            torch.tanh(network.decoder[0](mean)) if len(hidden) > 1 else mean
        )
        torch.testing.assert_close(decoded, scored)
    network.train()
    sampled = network.forward_rows(rows)
    assert not torch.allclose(sampled, scored)
    posterior = network.posterior
    assert posterior is not None
    kl = posterior.kl_from_standard_normal()
    assert kl.shape == (2,) and (kl >= 0).all()
    # the decoded sample is the mean plus noise scaled by the standard deviation
    assert posterior.sample.shape == posterior.mean.shape == (2, code)
    assert not torch.allclose(posterior.sample, posterior.mean)


def test_kl_divergence_of_the_prior_itself_is_zero() -> None:
    """A posterior equal to N(0, I) (zero mean and log variance) costs no KL."""
    network = VariationalAutoEncoder(ModelConfig(n_items=6, hidden=[3]), RatedSetInput())
    with torch.no_grad():
        network.encoder[0].weight.zero_()
        network.encoder[0].bias.zero_()
    network.train().forward_rows(two_rated_rows())
    assert network.posterior is not None
    torch.testing.assert_close(network.posterior.kl_from_standard_normal(), torch.zeros(2))


def test_beta_rises_linearly_to_the_cap() -> None:
    config = ModelConfig(n_items=6, hidden=[3], kl_cap=0.2, kl_anneal_steps=100)
    model = VariationalMultinomial(config)
    betas = [model.kl_weight(TrainStep(epoch=1, step=s, epochs=10)) for s in (0, 50, 100, 400)]
    assert betas == pytest.approx([0.0, 0.1, 0.2, 0.2])
    at_once = VariationalMultinomial(ModelConfig(n_items=6, hidden=[3], kl_cap=0.3))
    assert at_once.kl_weight(TrainStep(epoch=1, step=0, epochs=10)) == 0.3


def test_tied_variational_config_is_refused() -> None:
    with pytest.raises(ValueError, match="untied"):
        VariationalAutoEncoder(ModelConfig(n_items=6, hidden=[3], tied=True))
