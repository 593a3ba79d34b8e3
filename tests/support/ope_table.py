"""The tiny logged table the estimator tests compute by hand: four rounds with their
rewards, logging probabilities and a reward model's values."""

R = [1.0, 0.0, 1.0, 0.5]
MU = [0.25, 0.5, 0.5, 0.2]
QL = [0.8, 0.1, 0.6, 0.4]
QT = [0.7, 0.2, 0.5, 0.3]
