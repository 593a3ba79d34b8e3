"""Drift detection shared by serving and the simulator: ADWIN on reward residuals, PSI on
binned features, the residual baseline, and the workspace's alarm file."""
