import math

import numpy as np
import pytest
import torch

from aerec.train.config import ModelConfig
from aerec.train.loss import masked_mse
from aerec.train.model import AutoEncoder


def test_masked_mse_exact_example() -> None:
    target = torch.tensor([[5.0, 0.0, 3.0], [0.0, 0.0, 1.0]])
    predicted = torch.tensor([[4.0, 9.0, 3.0], [7.0, 7.0, 3.0]])
    # observed errors: 1, 0, 2 -> (1 + 0 + 4) / 3; unobserved 9s and 7s do not count
    assert masked_mse(predicted, target).item() == pytest.approx(5 / 3)


def test_masked_mse_no_observed_is_zero() -> None:
    assert masked_mse(torch.ones(2, 3), torch.zeros(2, 3)).item() == 0.0


@pytest.mark.parametrize("activation", ["relu", "selu", "elu", "sigmoid", "tanh", "identity"])
def test_autoencoder_shapes(activation: str) -> None:
    model = AutoEncoder(ModelConfig(n_items=30, hidden=[16, 8], activation=activation))
    assert model(torch.rand(4, 30)).shape == (4, 30)
    assert [layer.out_features for layer in model.encoder] == [16, 8]
    assert [layer.out_features for layer in model.decoder] == [16, 30]


def test_unknown_activation() -> None:
    with pytest.raises(ValueError):
        AutoEncoder(ModelConfig(n_items=3, activation="swish"))


def test_multinomial_nll_exact() -> None:
    from aerec.train.loss import multinomial_nll, rating_weights

    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    # the user rated item 0 (4 stars) and item 2 (1 star), padded with column 0 and value 0
    columns = torch.tensor([[0, 2, 0]])
    values = torch.tensor([[4.0, 1.0, 0.0]])
    # weight 1: items 0 and 2 count alike, whatever the rating (Mult-DAE); padding counts 0
    every = rating_weights(values, 4.0, 1.0)
    assert every.tolist() == [[1.0, 1.0, 0.0]]
    expected = -(math.log(0.5) + math.log(0.25))
    assert multinomial_nll(logits, columns, every).item() == pytest.approx(expected)
    # item 2 is rated below 4: it counts with weight 0.3
    liked = rating_weights(values, 4.0, 0.3)
    assert liked[0].tolist() == pytest.approx([1.0, 0.3, 0.0])
    assert multinomial_nll(logits, columns, liked).item() == pytest.approx(
        -(math.log(0.5) + 0.3 * math.log(0.25))
    )


def test_multinomial_nll_equals_the_dense_log_softmax() -> None:
    """The sparse form is the dense definition: minus the weighted log-softmax, per user."""
    from aerec.train.loss import multinomial_nll

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, generator=generator)
    columns = torch.tensor([[1, 4, 1], [0, 6, 2], [5, 5, 5]])
    weights = torch.tensor([[1.0, 0.3, 0.0], [1.0, 1.0, 0.3], [1.0, 0.0, 0.0]])
    dense = torch.zeros(3, 7).scatter_add_(1, columns, weights)
    expected = -(torch.log_softmax(logits, dim=1) * dense).sum(dim=1).mean()
    torch.testing.assert_close(multinomial_nll(logits, columns, weights), expected)


def test_multinomial_nll_gradient_is_the_dense_forms() -> None:
    """The fused backward gives the gradient autograd gives for the dense definition,
    with repeated columns, padding of weight 0 and large logits (no overflow)."""
    from aerec.train.loss import multinomial_nll

    generator = torch.Generator().manual_seed(1)
    base = torch.randn(4, 9, generator=generator) * 30
    columns = torch.tensor([[1, 2, 1], [0, 8, 3], [5, 5, 5], [2, 2, 0]])
    weights = torch.tensor([[1.0, 0.3, 1.0], [1.0, 1.0, 0.0], [0.3, 0.0, 0.0], [1.0, 1.0, 1.0]])
    dense = torch.zeros(4, 9).scatter_add_(1, columns, weights)
    fused, by_autograd = base.clone().requires_grad_(), base.clone().requires_grad_()
    (3 * multinomial_nll(fused, columns, weights)).backward()
    (3 * -(torch.log_softmax(by_autograd, dim=1) * dense).sum(dim=1).mean()).backward()
    assert fused.grad is not None and by_autograd.grad is not None
    torch.testing.assert_close(fused.grad, by_autograd.grad)


def test_tied_decoder_shares_encoder_weights() -> None:
    model = AutoEncoder(ModelConfig(n_items=12, hidden=[6, 3], tied=True))
    names = {name for name, _ in model.named_parameters()}
    assert not any(name.startswith("decoder.") for name in names)
    assert model(torch.rand(2, 12)).shape == (2, 12)
    untied = AutoEncoder(ModelConfig(n_items=12, hidden=[6, 3]))
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in untied.parameters())


def test_multinomial_input_is_the_normalised_rated_set() -> None:
    """Mult-DAE reads x / |x| of the binary rated set; the model scales after the matmul."""
    from aerec.train.model import RatedSetInput

    model = AutoEncoder(ModelConfig(n_items=4, hidden=[3]), RatedSetInput()).eval()
    ratings = torch.tensor([[5.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
    unit = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    unit = unit / unit.norm(dim=1, keepdim=True)
    encoder, decoder = model.encoder[0], model.decoder[0]
    expected = decoder(model.activation(encoder(unit)))
    torch.testing.assert_close(model(ratings), expected)


def test_training_forward_is_the_eval_forward_without_noise_and_dropout() -> None:
    """forward_rows (training) and forward (dense, eval) are one function: in eval mode
    they agree; in training mode the noise and dropout change the output."""
    from aerec.data.csr import CsrMatrix
    from aerec.train.rows import TrainingRows

    config = ModelConfig(n_items=5, hidden=[3], input_noise=0.5, input_dropout=0.5)
    model = AutoEncoder(config).eval()
    matrix = CsrMatrix.from_indices(
        np.array([0, 0, 1]), np.array([1, 3, 4]), np.array([4.0, 2.0, 5.0]), 2, 5
    )
    rows = TrainingRows(matrix, "cpu").batch(np.arange(2))
    dense = torch.from_numpy(matrix.densify(np.arange(2)))
    torch.testing.assert_close(model.forward_rows(rows), model(dense))
    torch.manual_seed(0)
    assert not torch.allclose(model.train().forward_rows(rows), model.eval()(dense))


def test_ensemble_is_the_mean_of_its_members() -> None:
    from aerec.train.kinds.rating import RatingAutoEncoder
    from aerec.train.model import Ensemble

    config = ModelConfig(n_items=6, hidden=[3])
    ensemble = RatingAutoEncoder(config, members=3).network.eval()
    assert isinstance(ensemble, Ensemble) and len(ensemble.members) == 3
    x = torch.rand(2, 6)
    expected = sum(member(x) for member in ensemble.members) / 3
    torch.testing.assert_close(ensemble(x), expected)
    assert isinstance(RatingAutoEncoder(config).network, AutoEncoder)
