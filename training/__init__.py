"""Learning from the logs: the join, off-policy estimators, the reward model, training and
its gate, MLflow tracking and experiment lift."""
