"""Jobs above the stages: the nightly run and the weekly retrain, with locks and gates."""
