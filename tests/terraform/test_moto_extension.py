"""The moto extension behind terraform/envs/local: the calls it adds behave like the AWS APIs they stand for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto_fixture import aws_client, moto_server

pytest.importorskip("moto", reason="moto[server] is needed for the local Terraform environment")
pytest.importorskip("boto3")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        assert url.startswith("http://127.0.0.1:")
        yield url


def test_scalable_target_tags_round_trip(endpoint: str) -> None:
    autoscaling = aws_client("application-autoscaling", endpoint)
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/tags-test/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=2,
        Tags={"Project": "dogbreed"},
    )
    target = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=["endpoint/tags-test/variant/AllTraffic"]
    )["ScalableTargets"][0]
    arn = target["ScalableTargetARN"]

    assert autoscaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"Project": "dogbreed"}
    autoscaling.tag_resource(ResourceARN=arn, Tags={"Owner": "ml"})
    autoscaling.untag_resource(ResourceARN=arn, TagKeys=["Project"])
    assert autoscaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"Owner": "ml"}


def test_tagging_an_unknown_scalable_target_is_a_client_error(endpoint: str) -> None:
    from botocore.exceptions import ClientError

    autoscaling = aws_client("application-autoscaling", endpoint)
    with pytest.raises(ClientError) as caught:
        autoscaling.list_tags_for_resource(
            ResourceARN="arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/missing"
        )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def _model_and_config(sagemaker, name: str) -> None:
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
        PrimaryContainer={"Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}
        ],
    )


def test_update_endpoint_moves_the_endpoint_to_the_new_configuration(endpoint: str) -> None:
    sagemaker = aws_client("sagemaker", endpoint)
    _model_and_config(sagemaker, "roll-a")
    _model_and_config(sagemaker, "roll-b")
    sagemaker.create_endpoint(EndpointName="roll", EndpointConfigName="roll-a")

    arn = sagemaker.update_endpoint(EndpointName="roll", EndpointConfigName="roll-b")["EndpointArn"]

    described = sagemaker.describe_endpoint(EndpointName="roll")
    assert described["EndpointArn"] == arn
    assert described["EndpointConfigName"] == "roll-b"
    assert described["EndpointStatus"] == "InService"
    assert described["ProductionVariants"][0]["DesiredInstanceCount"] == 2


def test_update_endpoint_with_unknown_configuration_is_a_client_error(endpoint: str) -> None:
    from botocore.exceptions import ClientError

    sagemaker = aws_client("sagemaker", endpoint)
    _model_and_config(sagemaker, "keep-a")
    sagemaker.create_endpoint(EndpointName="keep", EndpointConfigName="keep-a")

    with pytest.raises(ClientError):
        sagemaker.update_endpoint(EndpointName="keep", EndpointConfigName="does-not-exist")
    assert sagemaker.describe_endpoint(EndpointName="keep")["EndpointConfigName"] == "keep-a"


def test_binary_media_types_from_create_rest_api(endpoint: str) -> None:
    apigateway = aws_client("apigateway", endpoint)
    api_id = apigateway.create_rest_api(name="created", binaryMediaTypes=["image/*"])["id"]
    assert apigateway.get_rest_api(restApiId=api_id)["binaryMediaTypes"] == ["image/*"]


def test_binary_media_types_from_patch_paths(endpoint: str) -> None:
    apigateway = aws_client("apigateway", endpoint)
    api_id = apigateway.create_rest_api(name="media")["id"]

    apigateway.update_rest_api(
        restApiId=api_id,
        patchOperations=[
            {"op": "add", "path": "/binaryMediaTypes/image~1*"},
            {"op": "add", "path": "/binaryMediaTypes/application~1octet-stream"},
            {"op": "replace", "path": "/description", "value": "still handled by moto"},
        ],
    )
    api = apigateway.get_rest_api(restApiId=api_id)
    assert api["binaryMediaTypes"] == ["image/*", "application/octet-stream"]
    assert api["description"] == "still handled by moto"

    apigateway.update_rest_api(
        restApiId=api_id, patchOperations=[{"op": "remove", "path": "/binaryMediaTypes/image~1*"}]
    )
    assert apigateway.get_rest_api(restApiId=api_id)["binaryMediaTypes"] == ["application/octet-stream"]
