"""The shapes of a model and of its training, as stored in config.json (no torch here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from aerec.train.metrics import POSITIVE

ACTIVATION_NAMES = ("relu", "selu", "elu", "sigmoid", "tanh", "silu", "identity")
LEGACY_KIND_KEYS = ("likelihood", "item_based")  # config.json of checkpoints before "kind"


@dataclass(frozen=True)
class ModelConfig:
    """Shape of an autoencoder; stored as config.json beside the weights.

    What the network reads and how it is trained is its kind's (aerec/train/kinds/); the
    kind's name sits beside this in config.json. n_items is the input width (users, for
    the item-based kind). In Mult-DAE's multinomial likelihood a rated item counts with
    weight 1 from positive_rating up and below_positive_weight under it (1: every rated
    item alike); Mult-VAE adds its KL term, weighted up to kl_cap over kl_anneal_steps;
    RecVAE weighs its KL term by kl_gamma times each user's likelihood weight and trains
    its encoder for encoder_passes passes before each decoder pass.
    """

    n_items: int  # width of the input vector (users, for an item-based model)
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    activation: str = "selu"
    code_dropout: float = 0.0
    input_dropout: float = 0.0
    input_noise: float = 0.0  # std of Gaussian noise added to observed inputs in training
    output_activation: str = "identity"
    tied: bool = False
    below_positive_weight: float = 1.0
    positive_rating: float = POSITIVE  # the data's positive threshold (positive_threshold)
    kl_cap: float = 0.0  # Mult-VAE: the largest weight of the KL term
    kl_anneal_steps: int = 0  # Mult-VAE: batches over which that weight rises from 0
    kl_gamma: float = 0.0  # RecVAE: the KL weight per unit of a user's likelihood weight
    encoder_passes: int = 1  # RecVAE: encoder passes before each epoch's decoder pass

    def __post_init__(self) -> None:
        if not _is_count(self.n_items):
            raise ValueError(f"n_items {self.n_items!r}: expected a whole number >= 1")
        if not isinstance(self.hidden, list) or not all(_is_count(h) for h in self.hidden):
            raise ValueError(f"hidden {self.hidden!r}: expected a list of whole numbers >= 1")
        for name, value in (
            ("code_dropout", self.code_dropout),
            ("input_dropout", self.input_dropout),
        ):
            if not isinstance(value, int | float) or not 0 <= value < 1:
                raise ValueError(f"{name} {value!r}: expected a number in [0, 1)")
        if not isinstance(self.below_positive_weight, int | float) or not (
            0 <= self.below_positive_weight <= 1
        ):
            raise ValueError(
                f"below_positive_weight {self.below_positive_weight!r}: expected a number in [0, 1]"
            )
        if not isinstance(self.positive_rating, int | float) or not 0 < self.positive_rating < 1e6:
            raise ValueError(f"positive_rating {self.positive_rating!r}: expected a number > 0")
        if not isinstance(self.input_noise, int | float) or not 0 <= self.input_noise < 1e6:
            raise ValueError(f"input_noise {self.input_noise!r}: expected a number >= 0")
        if not isinstance(self.kl_cap, int | float) or not 0 <= self.kl_cap <= 10:
            raise ValueError(f"kl_cap {self.kl_cap!r}: expected a number in [0, 10]")
        if not isinstance(self.kl_anneal_steps, int) or self.kl_anneal_steps < 0:
            raise ValueError(f"kl_anneal_steps {self.kl_anneal_steps!r}: expected a count >= 0")
        if not isinstance(self.kl_gamma, int | float) or not 0 <= self.kl_gamma <= 10:
            raise ValueError(f"kl_gamma {self.kl_gamma!r}: expected a number in [0, 10]")
        if not _is_count(self.encoder_passes):
            raise ValueError(f"encoder_passes {self.encoder_passes!r}: expected a count >= 1")
        for name in (self.activation, self.output_activation):
            if name not in ACTIVATION_NAMES:
                raise ValueError(f"activation {name!r}: expected one of {ACTIVATION_NAMES}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """The config of config.json; the keys that told the kind before kinds were named
        (likelihood, item_based: aerec.train.registry reads them) are not the shape's."""
        return cls(**{k: v for k, v in values.items() if k not in LEGACY_KIND_KEYS})


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; stored in config.json."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0  # the optimiser's decay of every parameter
    l2: float = 0.0  # AutoRec's penalty: l2 * (sum of squared weights), biases exempt
    optimizer: str = "adam"  # adam | sgd (with momentum)
    momentum: float = 0.9
    refeed: bool = False  # DeepRecommender's dense re-feeding: a second step on f(x)
    seed: int = 0
    patience: int = 5
    lr_decay: float = 1.0  # multiply the learning rate by this after 3 epochs without gain
    # auto: bfloat16 autocast on a GPU that has it, float32 elsewhere; fp32; bf16 (anywhere)
    precision: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
