"""The model kinds, one module each; aerec.train.registry maps their names to them."""
