"""Autoencoder model, masked loss, trainer, evaluation and checkpoints (train-model)."""
