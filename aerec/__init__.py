"""aerec: a deep-autoencoder movie recommender run as a nightly batch job."""

__version__ = "0.1.0"
