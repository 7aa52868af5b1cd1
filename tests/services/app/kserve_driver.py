"""Drives the app with kserve's InferenceRESTClient, from the client environment of
`make clients` (kserve cannot share the dev lock), as a kserve user's program would.

Run with that environment's python; it imports nothing from this project. Reads one JSON
object on stdin, {"url": base URL, "commands": [...]}, runs each command with one client and
prints a JSON list with one result per command: {"ok": true, "value": ...} or
{"ok": false, "error": exception class, "message": str(exception), "status": HTTP status
or null}. Commands:
  {"op": "live"} / {"op": "ready"}          is_server_live / is_server_ready
  {"op": "model_ready", "model": name}      is_model_ready
  {"op": "infer", "model": name, "inputs": [{"name", "datatype", "shape", "data"}],
   "binary": bool (set_data_from_numpy(binary_data=...), else data= as given),
   "outputs": [{"name", "parameters"}] | null, "id": str | null, "parameters": {} | null}
  {"op": "infer_dict", "model": name, "body": {...}}   infer with a plain dict body
An infer result is {"id", "model_name", "parameters", "binary_response": whether the answer
carried Inference-Header-Content-Length, "outputs": [{"name", "datatype", "shape", "data"}]}
with each output's data decoded by the client (as_numpy), strings as str.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput
from kserve.utils.numpy_codec import to_np_dtype


def _input(spec: dict[str, Any], binary: bool) -> Any:
    if not binary:
        return InferInput(spec["name"], spec["shape"], spec["datatype"], data=spec["data"])
    tensor = InferInput(spec["name"], spec["shape"], spec["datatype"])
    values = np.array(spec["data"], dtype=to_np_dtype(spec["datatype"])).reshape(spec["shape"])
    tensor.set_data_from_numpy(values, binary_data=True)
    return tensor


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _response(response: Any, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "id": response.id,
        "model_name": response.model_name,
        "parameters": response.parameters,
        "binary_response": any(k.lower() == "inference-header-content-length"
                               for k in headers),
        "outputs": [{"name": output.name, "datatype": output.datatype, "shape": output.shape,
                     "data": _plain(output.as_numpy().tolist())}
                    for output in response.outputs],
    }


async def _run(client: Any, url: str, command: dict[str, Any]) -> Any:
    op = command["op"]
    if op == "live":
        return await client.is_server_live(url)
    if op == "ready":
        return await client.is_server_ready(url)
    if op == "model_ready":
        return await client.is_model_ready(url, command["model"])
    headers: dict[str, str] = {}
    if op == "infer":
        outputs = [RequestedOutput(o["name"], parameters=o.get("parameters"))
                   for o in command.get("outputs") or []]
        request = InferRequest(
            command["model"], [_input(t, command.get("binary", False)) for t in command["inputs"]],
            request_id=command.get("id"), parameters=command.get("parameters"),
            request_outputs=outputs or None)
        response = await client.infer(url, request, model_name=command["model"],
                                      response_headers=headers)
        return _response(response, headers)
    if op == "infer_dict":
        response = await client.infer(url, command["body"], model_name=command["model"],
                                      response_headers=headers)
        return _response(response, headers)
    raise ValueError(f"unknown op {op!r}")


async def main() -> None:
    job = json.load(sys.stdin)
    results: list[dict[str, Any]] = []
    async with InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30)) as client:
        for command in job["commands"]:
            try:
                value = await _run(client, job["url"], command)
            except Exception as exc:  # reported to the test, which asserts on it
                status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) \
                    else None
                results.append({"ok": False, "error": type(exc).__name__,
                                "message": str(exc), "status": status})
            else:
                results.append({"ok": True, "value": value})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
