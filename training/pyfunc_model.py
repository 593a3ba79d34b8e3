"""MLflow "models from code" entry point: the pyfunc model is defined by this file, so
MLflow stores code and the policy's bytes, never a pickle (see ``training.pyfunc``)."""

import mlflow

from training.pyfunc import PolicyModel

mlflow.models.set_model(PolicyModel())
