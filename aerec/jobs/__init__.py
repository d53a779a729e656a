"""Jobs above the stages: the weekly retrain with its model directory and quality gate."""
