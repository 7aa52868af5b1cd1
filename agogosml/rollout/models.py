"""A slot serves a pinned model version: an alias is resolved once, at deploy time."""

from __future__ import annotations

from agogosml.errors import AgogosmlError


class ModelPinError(AgogosmlError):
    """An alias could not be resolved to a version; nothing was deployed."""


def pin_model_uri(model_uri: str, tracking_uri: str | None) -> str:
    """`models:/<name>@<alias>` becomes `models:/<name>/<version>`, the version the alias
    points to in the registry now; any other URI (`models:/<name>/<version>`, `runs:/...`,
    a path) is returned as given."""
    if not model_uri.startswith("models:/"):
        return model_uri
    name, at, alias = model_uri.removeprefix("models:/").partition("@")
    if not at:
        return model_uri
    if not name or not alias or "/" in name or "/" in alias:
        raise ModelPinError(f"{model_uri} is not models:/<name>@<alias>")
    if not tracking_uri:
        raise ModelPinError(f"{model_uri} names an alias: give --mlflow-tracking-uri (or "
                            "MLFLOW_TRACKING_URI) to resolve it to a version, or deploy "
                            f"models:/{name}/<version>")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        version = MlflowClient(tracking_uri=tracking_uri).get_model_version_by_alias(
            name, alias).version
    except MlflowException as error:
        message = (str(error).strip().splitlines() or [repr(error)])[0][:300]
        raise ModelPinError(f"cannot resolve {model_uri} in {tracking_uri}: "
                            f"{message}") from None
    return f"models:/{name}/{version}"
