# The AWS provider's mock for the stack module's and envs/aws's plans (mock_provider source): the ARNs,
# ids and catalogue answers a real account would return.
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
mock_data "aws_ssm_parameter" {
  defaults = { insecure_value = "ami-0123456789abcdef0", value = "ami-0123456789abcdef0" }
}
mock_data "aws_ec2_instance_type" {
  defaults = { instance_storage_supported = false }
}
mock_data "aws_sagemaker_prebuilt_ecr_image" {
  defaults = { registry_path = "683313688378.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312" }
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
mock_resource "aws_sns_topic" {
  defaults = { arn = "arn:aws:sns:us-east-1:123456789012:dogbreed-alarms" }
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
  defaults = {
    invoke_url = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    arn        = "arn:aws:apigateway:us-east-1::/restapis/abc123/stages/prod"
  }
}
mock_resource "aws_api_gateway_api_key" {
  defaults = { id = "key123", value = "secret-key-value" }
}
