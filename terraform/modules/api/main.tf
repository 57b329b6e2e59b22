locals {
  # One runtime for the function and the zip's wheels (build_zip.py reads the same file).
  runtime = coalesce(var.runtime, jsondecode(file("${path.module}/runtime.json")).runtime)
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

resource "aws_lambda_function" "this" {
  function_name = var.name
  description   = "Dog breed inference API: validates requests, calls the SageMaker endpoint"
  role          = var.lambda_role_arn
  handler       = var.handler
  runtime       = local.runtime
  architectures = ["x86_64"]
  memory_size   = var.memory_size_mb
  timeout       = var.timeout_seconds
  kms_key_arn   = var.kms_key_arn

  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  # Versions let the live alias (and its provisioned concurrency) move only when the code changes.
  publish = true

  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = merge(var.environment, {
      ENDPOINT_NAME            = var.endpoint_name
      ENDPOINT_TIMEOUT_SECONDS = tostring(var.endpoint_timeout_seconds)
      ALLOWED_ORIGINS          = join(",", var.allowed_origins)
    })
  }

  tracing_config {
    mode = "Active"
  }

  dynamic "vpc_config" {
    for_each = length(var.subnet_ids) > 0 ? [1] : []

    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = concat(aws_security_group.lambda[*].id, var.security_group_ids)
    }
  }

  # Lambda keeps a VPC function's network interfaces for a while after it is deleted, and the security
  # group cannot be deleted while they hold it: swap in the VPC's default group first, as
  # terraform-aws-modules/lambda does, so destroy does not hang on the function's own group.
  replace_security_groups_on_destroy = length(var.subnet_ids) > 0 ? true : null

  tags = var.tags

  # The log group must exist with its retention before the first invocation creates one without.
  depends_on = [aws_cloudwatch_log_group.this]
}

resource "aws_lambda_alias" "live" {
  name             = "live"
  description      = "The version API Gateway invokes"
  function_name    = aws_lambda_function.this.function_name
  function_version = aws_lambda_function.this.version
}

resource "aws_lambda_provisioned_concurrency_config" "live" {
  count = var.provisioned_concurrency > 0 ? 1 : 0

  function_name                     = aws_lambda_alias.live.function_name
  qualifier                         = aws_lambda_alias.live.name
  provisioned_concurrent_executions = var.provisioned_concurrency
}

resource "aws_lambda_permission" "api" {
  for_each = local.methods

  statement_id  = "AllowApiGateway_${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  qualifier     = aws_lambda_alias.live.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/${var.stage_name}/${each.value.method}/${each.value.path}"
}
