"""Serves the user's MLflow model: /predict for people, /v1/batches for the pipeline,
the Open Inference Protocol v2, and MLflow's scoring protocol."""

SCORING_ROUTES = frozenset({"/v1/batches", "/predict", "/invocations",
                            "/v2/models/{name}/infer",
                            "/v2/models/{name}/versions/{version}/infer"})
"""The app's scoring routes, as it labels its requests (agogosml_app_requests_total): the
only traffic the rollout gate judges a slot on. Here, where nothing heavy is imported, so
the rollout tool can read it without the app's dependencies."""
