import pytest
import torch

from aerec.train.loss import masked_mse
from aerec.train.model import AutoEncoder, ModelConfig


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
