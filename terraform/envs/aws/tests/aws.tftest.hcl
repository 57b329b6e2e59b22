# The composition plans and wires the outputs `dogclient configure --from-terraform` reads.
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "us-east-1" }
  }
  mock_data "aws_availability_zones" {
    defaults = { names = ["us-east-1a", "us-east-1b", "us-east-1c"] }
  }
  mock_data "aws_ami" {
    defaults = { id = "ami-0123456789abcdef0" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/unit" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:us-east-1:123456789012:log-group:unit" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:us-east-1:123456789012:key/unit" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::unit-bucket" }
  }
  mock_resource "aws_lambda_alias" {
    defaults = {
      invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:dogbreed-api:live/invocations"
    }
  }
  mock_resource "aws_api_gateway_rest_api" {
    defaults = { execution_arn = "arn:aws:execute-api:us-east-1:123456789012:abc123" }
  }
  mock_resource "aws_api_gateway_stage" {
    defaults = { invoke_url = "https://abc123.execute-api.us-east-1.amazonaws.com/prod" }
  }
  mock_resource "aws_api_gateway_api_key" {
    defaults = { id = "key123", value = "secret-key-value" }
  }
}

variables {
  model_data_url  = "s3://dogbreed-123456789012-artifacts/models/run-1/model.tar.gz"
  lambda_zip_path = "../../modules/api/tests/fixtures/lambda.zip"
}

run "outputs_for_the_client" {
  command = apply

  assert {
    condition     = output.api_url == "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    error_message = "api_url must be the stage URL without a trailing slash."
  }

  assert {
    condition     = output.api_key == "secret-key-value" && output.api_key_id == "key123"
    error_message = "api_key and api_key_id must come from the API key."
  }

  assert {
    condition     = output.endpoint_name == "dogbreed-endpoint" && output.bucket_name == "dogbreed-123456789012-artifacts"
    error_message = "endpoint_name and bucket_name must be the stack's."
  }

  assert {
    condition     = output.trainer_instance_id == null
    error_message = "The trainer host is off by default, so trainer_instance_id is null."
  }

  assert {
    condition     = length(module.network.private_subnet_ids) == 2
    error_message = "The stack runs in two private subnets."
  }

  assert {
    condition     = !local.endpoint_has_instance_store
    error_message = "The default ml.m5.large endpoint has EBS volumes, encrypted with the stack's key."
  }

  assert {
    condition     = length(local.lambda_subnet_ids) == 0 && length(local.lambda_security_group_ids) == 0
    error_message = "By default the Lambda runs outside the VPC, so URL mode reaches the internet without NAT."
  }

  assert {
    condition = (
      !strcontains(module.iam.lambda_policy_json, "ec2:CreateNetworkInterface") &&
      toset(keys(module.network.interface_endpoint_ids)) == toset(["ssm", "ssmmessages", "ec2messages", "logs"])
    )
    error_message = "Outside the VPC the Lambda role needs no ENI permissions and the VPC no SageMaker runtime or X-Ray endpoints."
  }
}

run "lambda_in_vpc_with_nat" {
  command = plan

  variables {
    lambda_in_vpc      = true
    enable_nat_gateway = true
  }

  assert {
    condition = (
      length(local.lambda_subnet_ids) == 2 && length(local.lambda_security_group_ids) == 1 &&
      strcontains(module.iam.lambda_policy_json, "ec2:CreateNetworkInterface")
    )
    error_message = "lambda_in_vpc = true must attach the Lambda to both private subnets and grant its role the ENI permissions."
  }

  assert {
    condition     = contains(local.interface_endpoint_services, "sagemaker.runtime") && contains(local.interface_endpoint_services, "xray")
    error_message = "A VPC-attached Lambda reaches the SageMaker runtime and X-Ray through interface endpoints."
  }
}

run "lambda_in_vpc_without_nat_warns" {
  command = plan

  variables {
    lambda_in_vpc = true
  }

  # A check block failing is a warning: the plan still succeeds.
  expect_failures = [check.lambda_in_vpc_reaches_the_internet]
}

run "gpu_endpoint_gets_no_volume_key" {
  command = plan

  variables {
    endpoint_instance_type = "ml.g4dn.xlarge"
    image_tag              = "2.6.0-gpu-py312"
  }

  assert {
    condition     = module.endpoint.image_uri != "" && local.endpoint_has_instance_store
    error_message = "ml.g4dn has instance-store volumes."
  }
}

run "trainer_host_on_demand" {
  command = apply

  variables {
    enable_trainer_host = true
  }

  assert {
    condition     = output.trainer_instance_id != null
    error_message = "enable_trainer_host = true must create the trainer host."
  }
}
