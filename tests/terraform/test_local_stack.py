"""terraform/envs/local applied for real against a moto server, checked with boto3, then destroyed.

One apply serves every test in this module (the tests run in file order; the last one destroys). It skips
when terraform or the hashicorp/aws provider mirror is missing. Run only this with
`pytest tests/terraform -m terraform_apply`; leave it out with `-m "not terraform_apply"`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from moto_fixture import aws_client, moto_server
from tf_support import Terraform

pytest.importorskip("moto", reason="moto[server] is needed for the local Terraform environment")
pytest.importorskip("boto3")

pytestmark = pytest.mark.terraform_apply

NAME = "dogbreed-local"
ENDPOINT_NAME = f"{NAME}-endpoint"
FUNCTION_NAME = f"{NAME}-api"
# Most of an apply is the provider waiting (S3 lifecycle settling, VPC endpoints); moto copes with 8 at once.
APPLY_FLAGS = ("-auto-approve", "-input=false", "-no-color", "-parallelism=8")


@dataclass
class LocalStack:
    terraform: Terraform
    workdir: Path
    endpoint: str
    variables: dict[str, str]
    outputs: dict[str, Any] = field(default_factory=dict)
    destroyed: bool = False

    def var_flags(self) -> list[str]:
        return [f"-var={key}={value}" for key, value in self.variables.items()]

    def apply(self, *extra: str) -> None:
        self.terraform.run("apply", *APPLY_FLAGS, *self.var_flags(), *extra, cwd=self.workdir, timeout=540)
        raw = self.terraform.run("output", "-json", "-no-color", cwd=self.workdir).stdout
        self.outputs = {key: value["value"] for key, value in json.loads(raw).items()}

    def destroy(self) -> None:
        self.terraform.run("destroy", *APPLY_FLAGS, *self.var_flags(), cwd=self.workdir, timeout=540)
        self.destroyed = True

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint)


@pytest.fixture(scope="module")
def stack(terraform: Terraform, terraform_copy: Path, lambda_zip: Path) -> Iterator[LocalStack]:
    workdir = terraform_copy / "envs" / "local"
    with moto_server() as endpoint:
        terraform.init(workdir)
        local = LocalStack(
            terraform=terraform,
            workdir=workdir,
            endpoint=endpoint,
            variables={"moto_endpoint": endpoint, "lambda_zip_path": str(lambda_zip)},
        )
        try:
            local.apply()
            yield local
        finally:
            if not local.destroyed:
                # Best effort: the moto server and its state go away with this block anyway.
                terraform.run("destroy", *APPLY_FLAGS, *local.var_flags(), cwd=workdir, timeout=540, check=False)


def _statements(document: Any) -> list[dict[str, Any]]:
    policy = json.loads(document) if isinstance(document, str) else document
    statements = policy["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_outputs_are_what_the_client_reads(stack: LocalStack) -> None:
    outputs = stack.outputs
    assert outputs["endpoint_name"] == ENDPOINT_NAME
    assert outputs["bucket_name"] == f"{NAME}-123456789012-artifacts"
    assert outputs["api_url"].startswith("https://") and outputs["api_url"].endswith("/prod")
    key = stack.client("apigateway").get_api_key(apiKey=outputs["api_key_id"], includeValue=True)
    assert outputs["api_key"] == key["value"] and key["enabled"]
    assert outputs["trainer_instance_id"].startswith("i-")


def test_endpoint_is_in_service_with_its_scaling_policy(stack: LocalStack) -> None:
    sagemaker = stack.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT_NAME)
    assert endpoint["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["ProductionVariants"][0]["ModelName"] == stack.outputs["model_name"]
    model = sagemaker.describe_model(ModelName=stack.outputs["model_name"])
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{stack.outputs['bucket_name']}/models/local/model.tar.gz"
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert "/pytorch-inference:" in model["PrimaryContainer"]["Image"]

    autoscaling = stack.client("application-autoscaling")
    resource_id = f"endpoint/{ENDPOINT_NAME}/variant/AllTraffic"
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource_id])[
        "ScalableTargets"
    ]
    assert [(t["MinCapacity"], t["MaxCapacity"], t["ScalableDimension"]) for t in targets] == [
        (1, 4, "sagemaker:variant:DesiredInstanceCount")
    ]
    policies = autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource_id)[
        "ScalingPolicies"
    ]
    assert len(policies) == 1
    policy = policies[0]
    assert policy["PolicyARN"] == stack.outputs["scaling_policy_arn"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert (tracking["TargetValue"], tracking["ScaleInCooldown"], tracking["ScaleOutCooldown"]) == (1500.0, 600, 300)

    alarms = stack.client("cloudwatch").describe_alarms(AlarmNamePrefix=ENDPOINT_NAME)["MetricAlarms"]
    assert sorted(alarm["MetricName"] for alarm in alarms) == ["Invocation5XXErrors", "ModelLatency"]
    # Without alarm_actions the alarms notify the stack's own topic, not nobody.
    topic = stack.outputs["alarm_topic_arn"]
    assert topic.endswith(f":{NAME}-alarms") and all(alarm["AlarmActions"] == [topic] for alarm in alarms)


def test_rest_api_routes_to_the_lambda(stack: LocalStack) -> None:
    apigateway = stack.client("apigateway")
    api_id = stack.outputs["rest_api_id"]
    api = apigateway.get_rest_api(restApiId=api_id)
    # The one list of raw image types (inference_lambda/media_types.json) is the API's binary media types.
    media_types = Path(__file__).resolve().parents[2] / "services/inference_lambda/src/inference_lambda/media_types.json"
    assert set(api["binaryMediaTypes"]) == set(json.loads(media_types.read_text())["image"])

    resources = {item["path"]: item for item in apigateway.get_resources(restApiId=api_id, embed=["methods"])["items"]}
    assert {"/predict", "/health"} <= set(resources)
    lambda_client = stack.client("lambda")
    alias_arn = lambda_client.get_alias(FunctionName=FUNCTION_NAME, Name="live")["AliasArn"]
    function = lambda_client.get_function(FunctionName=FUNCTION_NAME)["Configuration"]
    for path, method in (("/predict", "POST"), ("/health", "GET")):
        described = apigateway.get_method(restApiId=api_id, resourceId=resources[path]["id"], httpMethod=method)
        assert described["apiKeyRequired"] is True
        integration = described["methodIntegration"]
        assert integration["type"] == "AWS_PROXY"
        assert integration["uri"].endswith(f"/functions/{alias_arn}/invocations")

    assert function["Handler"] == "inference_lambda.app.handler"
    assert function["Timeout"] < 29
    assert function["Environment"]["Variables"]["ENDPOINT_NAME"] == ENDPOINT_NAME
    assert function["TracingConfig"]["Mode"] == "Active"
    # lambda_in_vpc is off by default: outside the VPC, URL mode reaches the internet without a NAT gateway.
    assert not function.get("VpcConfig", {}).get("SubnetIds")

    permission = json.loads(lambda_client.get_policy(FunctionName=FUNCTION_NAME, Qualifier="live")["Policy"])
    source_arns = sorted(statement["Condition"]["ArnLike"]["AWS:SourceArn"] for statement in permission["Statement"])
    assert [arn.rsplit(f"{api_id}/", 1)[1] for arn in source_arns] == ["prod/GET/", "prod/GET/health", "prod/POST/predict"]
    # The web page (web_page.tf): GET / on the root resource, a proxy of the live alias, no API key.
    page = apigateway.get_method(restApiId=api_id, resourceId=resources["/"]["id"], httpMethod="GET")
    assert page["apiKeyRequired"] is False and page["methodIntegration"]["type"] == "AWS_PROXY"
    assert page["methodIntegration"]["uri"].endswith(f"/functions/{alias_arn}/invocations")

    stage = apigateway.get_stage(restApiId=api_id, stageName="prod")
    assert stage["tracingEnabled"] is True
    assert "destinationArn" in stage["accessLogSettings"]


def test_roles_carry_their_scoped_policies(stack: LocalStack) -> None:
    iam = stack.client("iam")
    endpoint_arn = stack.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT_NAME)["EndpointArn"]
    bucket_arn = f"arn:aws:s3:::{stack.outputs['bucket_name']}"

    lambda_policy = iam.get_role_policy(
        RoleName=stack.outputs["lambda_role_name"], PolicyName="invoke-endpoint-and-log"
    )
    sagemaker_grants = [
        (statement["Action"], statement["Resource"])
        for statement in _statements(lambda_policy["PolicyDocument"])
        if any(action.startswith("sagemaker:") for action in _as_list(statement["Action"]))
    ]
    assert sagemaker_grants == [(["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"], [endpoint_arn])]
    lambda_actions = {
        action for statement in _statements(lambda_policy["PolicyDocument"]) for action in _as_list(statement["Action"])
    }
    assert not any(action.startswith("ec2:") for action in lambda_actions), "a function outside the VPC needs no ENIs"

    sagemaker_policy = iam.get_role_policy(
        RoleName=stack.outputs["sagemaker_role_name"], PolicyName="bucket-image-logs"
    )
    writes = [s["Resource"] for s in _statements(sagemaker_policy["PolicyDocument"]) if "s3:PutObject" in s["Action"]]
    assert writes == [[f"{bucket_arn}/models/*"]]

    trainer_role = stack.outputs["trainer_role_name"]
    attached = [
        policy["PolicyArn"] for policy in iam.list_attached_role_policies(RoleName=trainer_role)["AttachedPolicies"]
    ]
    assert attached == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    trainer_policy = iam.get_role_policy(RoleName=trainer_role, PolicyName="bucket-access")
    s3_resources = {
        resource
        for statement in _statements(trainer_policy["PolicyDocument"])
        if any(action.startswith("s3:") for action in _as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"])
    }
    assert s3_resources == {f"{bucket_arn}/data/*", f"{bucket_arn}/models/*", f"{bucket_arn}/code/*", bucket_arn}

    for role in iam.list_roles()["Roles"]:
        for policy in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]:
            assert "FullAccess" not in policy["PolicyArn"], f"{role['RoleName']} has {policy['PolicyArn']}"


def test_trainer_host_is_private_with_imdsv2(stack: LocalStack) -> None:
    reservations = stack.client("ec2").describe_instances(InstanceIds=[stack.outputs["trainer_instance_id"]])[
        "Reservations"
    ]
    instance = reservations[0]["Instances"][0]
    assert instance["State"]["Name"] == "running"
    assert "PublicIpAddress" not in instance
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["InstanceType"] == "g4dn.xlarge"
    assert "KeyName" not in instance
    status = stack.client("ssm").get_parameter(Name=stack.outputs["trainer_status_parameter"])["Parameter"]
    assert status["Value"] == "pending", "the host overwrites it with ok or failed: <step>"
    subnet = stack.client("ec2").describe_subnets(SubnetIds=[instance["SubnetId"]])["Subnets"][0]
    assert subnet["MapPublicIpOnLaunch"] is False and subnet["VpcId"] == stack.outputs["vpc_id"]


def test_bucket_is_encrypted_versioned_and_private(stack: LocalStack) -> None:
    s3 = stack.client("s3")
    bucket = stack.outputs["bucket_name"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    assert s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]["TargetBucket"] == f"{bucket}-access-logs"

    # Objects written below the model prefix come back: the emulated stack is usable, not just present.
    s3.put_object(Bucket=bucket, Key="models/local/model.tar.gz", Body=b"artifact")
    assert s3.get_object(Bucket=bucket, Key="models/local/model.tar.gz")["Body"].read() == b"artifact"


def test_new_artifact_rolls_the_endpoint_without_a_name_clash(stack: LocalStack) -> None:
    sagemaker = stack.client("sagemaker")
    old_model = stack.outputs["model_name"]
    old_config = sagemaker.describe_endpoint(EndpointName=ENDPOINT_NAME)["EndpointConfigName"]

    stack.variables["model_data_url"] = f"s3://{stack.outputs['bucket_name']}/models/run-2/model.tar.gz"
    stack.apply("-target=module.stack.module.endpoint")

    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT_NAME)
    assert endpoint["EndpointStatus"] == "InService"
    assert stack.outputs["model_name"] != old_model
    assert endpoint["EndpointConfigName"] != old_config
    new_config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert new_config["ProductionVariants"][0]["ModelName"] == stack.outputs["model_name"]
    models = [model["ModelName"] for model in sagemaker.list_models()["Models"]]
    assert models == [stack.outputs["model_name"]], "the old model must be deleted after the roll"
    configs = [config["EndpointConfigName"] for config in sagemaker.list_endpoint_configs()["EndpointConfigs"]]
    assert configs == [endpoint["EndpointConfigName"]]


def test_destroy_leaves_nothing_behind(stack: LocalStack) -> None:
    stack.destroy()

    ec2 = stack.client("ec2")
    assert [vpc["VpcId"] for vpc in ec2.describe_vpcs()["Vpcs"] if not vpc["IsDefault"]] == []
    live_instances = [
        instance["InstanceId"]
        for reservation in ec2.describe_instances()["Reservations"]
        for instance in reservation["Instances"]
        if instance["State"]["Name"] not in ("terminated", "shutting-down")
    ]
    assert live_instances == []
    # Deleted endpoints stay listed for a while in the "deleted" state, as on AWS.
    assert [
        e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() != "deleted"
    ] == []
    assert stack.client("s3").list_buckets()["Buckets"] == []
    assert stack.client("sns").list_topics()["Topics"] == []
    assert stack.client("ssm").describe_parameters()["Parameters"] == []
    assert stack.client("lambda").list_functions()["Functions"] == []
    apigateway = stack.client("apigateway")
    assert apigateway.get_rest_apis()["items"] == []
    assert apigateway.get_api_keys()["items"] == []
    assert apigateway.get_usage_plans()["items"] == []
    sagemaker = stack.client("sagemaker")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []
    autoscaling = stack.client("application-autoscaling")
    assert autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert stack.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert stack.client("logs").describe_log_groups()["logGroups"] == []
    iam = stack.client("iam")
    assert iam.list_roles()["Roles"] == []
    assert iam.list_instance_profiles()["InstanceProfiles"] == []
    kms = stack.client("kms")
    # KMS keys cannot be deleted at once, only scheduled for deletion; that is what destroy must do to the
    # stack's key. Keys behind alias/aws/* (moto makes aws/ebs for the encrypted root volume) are the
    # account's AWS managed keys, not the stack's.
    aliases = kms.list_aliases()["Aliases"]
    aws_managed = {alias.get("TargetKeyId") for alias in aliases if alias["AliasName"].startswith("alias/aws/")}
    live_keys = [
        (key["KeyId"], key["KeyState"], key.get("Description"))
        for key in (kms.describe_key(KeyId=item["KeyId"])["KeyMetadata"] for item in kms.list_keys()["Keys"])
        if key["KeyId"] not in aws_managed and key["KeyState"] != "PendingDeletion"
    ]
    assert live_keys == []
    assert [alias["AliasName"] for alias in aliases if alias["AliasName"].startswith(f"alias/{NAME}")] == []
