"""Run a moto server for terraform/envs/local, with the few calls the stack needs that moto lacks.

moto (5.x) has no Application Auto Scaling TagResource/UntagResource/ListTagsForResource, which the AWS
provider calls for every aws_appautoscaling_target, and no SageMaker UpdateEndpoint, which the provider
calls when a new model artifact rolls the endpoint onto a new endpoint configuration; and its API Gateway
drops binaryMediaTypes from CreateRestApi and takes the media type of an `add /binaryMediaTypes/image~1*`
patch from the (absent) value instead of the path, storing empty strings. `patch_moto()` adds and fixes these in moto's own backends and response
classes, so they behave like the rest of moto (state kept per account and region, errors in the service's
error format).

    python terraform/scripts/moto_server.py              # port 0: a free port, printed on stdout
    python terraform/scripts/moto_server.py --port 5000

The first stdout line is `MOTO_ENDPOINT=http://127.0.0.1:<port>`; the server runs until SIGINT/SIGTERM.
Set MOTO_IAM_LOAD_MANAGED_POLICIES=true (done here unless already set) so AWS managed policies such as
AmazonSSMManagedInstanceCore exist to be attached.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any

# Read by moto when its IAM backend is created, so it must be set before moto is imported.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

_PATCHED = False


def _tags_store(backend: Any) -> dict[str, dict[str, str]]:
    store = getattr(backend, "_dogbreed_tags", None)
    if store is None:
        store = {}
        backend._dogbreed_tags = store
    return store


def _find_scalable_target(backend: Any, arn: str) -> Any | None:
    for targets in backend.targets.values():
        for target in targets.values():
            if target.arn == arn:
                return target
    return None


def patch_moto() -> None:
    """Add the missing Application Auto Scaling tag calls and SageMaker UpdateEndpoint to moto."""
    global _PATCHED
    if _PATCHED:
        return

    from moto.applicationautoscaling.exceptions import AWSValidationException
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    # --- Application Auto Scaling: tags on scalable targets -------------------------------------------------
    original_register = ApplicationAutoScalingResponse.register_scalable_target

    def register_scalable_target(self: ApplicationAutoScalingResponse) -> str:
        body = original_register(self)
        tags = self._get_param("Tags")
        if tags:
            arn = json.loads(body)["ScalableTargetARN"]
            _tags_store(self.applicationautoscaling_backend).setdefault(arn, {}).update(tags)
        return body

    def _require_target(self: ApplicationAutoScalingResponse, arn: str) -> None:
        if _find_scalable_target(self.applicationautoscaling_backend, arn) is None:
            # The real service answers ResourceNotFoundException; moto's validation error is close enough
            # for the provider, which only needs a 4xx to stop retrying.
            raise AWSValidationException(f"No scalable target found for ARN {arn}")

    def tag_resource(self: ApplicationAutoScalingResponse) -> str:
        arn = self._get_param("ResourceARN")
        _require_target(self, arn)
        _tags_store(self.applicationautoscaling_backend).setdefault(arn, {}).update(self._get_param("Tags") or {})
        return "{}"

    def untag_resource(self: ApplicationAutoScalingResponse) -> str:
        arn = self._get_param("ResourceARN")
        _require_target(self, arn)
        tags = _tags_store(self.applicationautoscaling_backend).get(arn, {})
        for key in self._get_param("TagKeys") or []:
            tags.pop(key, None)
        return "{}"

    def list_tags_for_resource(self: ApplicationAutoScalingResponse) -> str:
        arn = self._get_param("ResourceARN")
        _require_target(self, arn)
        return json.dumps({"Tags": _tags_store(self.applicationautoscaling_backend).get(arn, {})})

    ApplicationAutoScalingResponse.register_scalable_target = register_scalable_target
    ApplicationAutoScalingResponse.tag_resource = tag_resource
    ApplicationAutoScalingResponse.untag_resource = untag_resource
    ApplicationAutoScalingResponse.list_tags_for_resource = list_tags_for_resource

    # --- SageMaker: UpdateEndpoint ----------------------------------------------------------------------------
    def backend_update_endpoint(
        self: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str
    ) -> FakeEndpoint:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        config = self.describe_endpoint_config(endpoint_config_name)  # raises moto's ValidationError if missing
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.data_capture_config = config["DataCaptureConfig"]
        # The real service passes through Updating; moto has no background work, so the update is done at once.
        endpoint.endpoint_status = "InService"
        from moto.core.utils import utcnow

        endpoint.last_modified_time = utcnow()
        return endpoint

    def update_endpoint(self: SageMakerResponse) -> Any:
        from moto.core.responses import ActionResult

        endpoint = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": endpoint.arn})

    SageMakerModelBackend.update_endpoint = backend_update_endpoint
    SageMakerResponse.update_endpoint = update_endpoint

    # --- API Gateway: binary media types ------------------------------------------------------------------
    from moto.apigateway.models import RestAPI
    from moto.apigateway.responses import APIGatewayResponse

    original_create_rest_api = APIGatewayResponse.create_rest_api

    def create_rest_api(self: APIGatewayResponse) -> Any:
        # moto drops binaryMediaTypes from CreateRestApi.
        status, headers, body = original_create_rest_api(self)
        media_types = self._get_param("binaryMediaTypes")
        if status == 200 and media_types:
            rest_api = self.backend.get_rest_api(json.loads(body)["id"])
            rest_api.binaryMediaTypes = list(media_types)
            body = json.dumps(rest_api.to_dict())
        return status, headers, body

    APIGatewayResponse.create_rest_api = create_rest_api

    original_apply_patch_operations = RestAPI.apply_patch_operations
    media_types_path = "/binaryMediaTypes/"

    def apply_patch_operations(self: RestAPI, patch_operations: list[dict[str, Any]]) -> None:
        remaining = []
        for operation in patch_operations:
            path = operation.get("path", "")
            if operation.get("op") in ("add", "remove") and path.startswith(media_types_path):
                # JSON Pointer escapes: ~1 is "/", ~0 is "~".
                media_type = path[len(media_types_path) :].replace("~1", "/").replace("~0", "~")
                if operation["op"] == "add" and media_type not in self.binaryMediaTypes:
                    self.binaryMediaTypes.append(media_type)
                elif operation["op"] == "remove" and media_type in self.binaryMediaTypes:
                    self.binaryMediaTypes.remove(media_type)
            else:
                remaining.append(operation)
        original_apply_patch_operations(self, remaining)

    RestAPI.apply_patch_operations = apply_patch_operations

    _PATCHED = True


def serve(host: str, port: int) -> None:
    patch_moto()
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    print(f"MOTO_ENDPOINT=http://{bound_host}:{bound_port}", flush=True)

    stopped = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()
    server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto server with the calls terraform/envs/local needs")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default: 0)")
    args = parser.parse_args(argv)
    serve(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
