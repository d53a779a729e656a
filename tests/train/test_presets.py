"""Presets: a sweep's configuration is a preset with settings replaced."""

import pytest

from aerec.train.presets import PRESETS


def test_changed_replaces_model_train_and_members_settings() -> None:
    base = PRESETS["recvae"]
    model = dict(base.model)
    changed = base.changed(
        {"model.kl_gamma": 0.7, "model.hidden": [60, 20], "train.lr": 0.25, "members": 3}
    )
    assert changed.model == {**model, "kl_gamma": 0.7, "hidden": [60, 20]}
    assert changed.train.lr == 0.25 and changed.train.batch_size == base.train.batch_size
    assert changed.members == 3 and changed.kind == base.kind
    assert base.model == model and base.members == 1  # the preset is untouched
    assert base.changed({}) == base


def test_changed_refuses_a_setting_of_neither_part() -> None:
    with pytest.raises(ValueError, match=r"\['kl_gamma'\]"):
        PRESETS["default"].changed({"kl_gamma": 0.1})
