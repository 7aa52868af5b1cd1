"""Serves the user's MLflow model: /predict for people, /v1/batches for the pipeline,
and the Open Inference Protocol v2."""
