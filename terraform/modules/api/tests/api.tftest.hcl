mock_provider "aws" {
  mock_resource "aws_api_gateway_rest_api" {
    defaults = {
      execution_arn = "arn:aws:execute-api:eu-west-1:123456789012:abc123"
      id            = "abc123"
    }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/unit-apigw-logs" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:unit" }
  }
  mock_resource "aws_lambda_alias" {
    defaults = {
      arn        = "arn:aws:lambda:eu-west-1:123456789012:function:unit-api:live"
      invoke_arn = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:unit-api:live/invocations"
    }
  }
  mock_resource "aws_api_gateway_stage" {
    defaults = { invoke_url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/" }
  }
}

variables {
  name            = "unit-api"
  lambda_zip_path = "tests/fixtures/lambda.zip"
  lambda_role_arn = "arn:aws:iam::123456789012:role/unit-lambda"
  endpoint_name   = "unit-endpoint"
}

run "function_and_routes" {
  command = apply

  assert {
    condition     = contains(aws_api_gateway_rest_api.this.binary_media_types, "image/jpeg")
    error_message = "Image bodies must reach the function as binary."
  }

  assert {
    condition     = aws_lambda_function.this.timeout < 29 && aws_lambda_function.this.timeout == 25
    error_message = "The Lambda timeout must stay below API Gateway's 29 s limit."
  }

  assert {
    condition = (
      aws_lambda_function.this.handler == "inference_lambda.app.handler" &&
      aws_lambda_function.this.environment[0].variables["ENDPOINT_NAME"] == "unit-endpoint" &&
      aws_lambda_function.this.environment[0].variables["ENDPOINT_TIMEOUT_SECONDS"] == "10" &&
      aws_lambda_function.this.environment[0].variables["ALLOWED_ORIGINS"] == ""
    )
    error_message = "The function must get its handler and ENDPOINT_NAME, ENDPOINT_TIMEOUT_SECONDS, ALLOWED_ORIGINS."
  }

  assert {
    condition     = length(aws_lambda_function.this.vpc_config) == 0
    error_message = "Without subnet_ids the function runs outside any VPC."
  }

  assert {
    condition     = aws_lambda_function.this.reserved_concurrent_executions == 50 && length(aws_lambda_provisioned_concurrency_config.live) == 0
    error_message = "Expected reserved concurrency 50 and no provisioned concurrency by default."
  }

  assert {
    condition     = aws_lambda_function.this.tracing_config[0].mode == "Active" && aws_api_gateway_stage.this.xray_tracing_enabled
    error_message = "X-Ray tracing must be on for the function and the stage."
  }

  assert {
    condition = (
      aws_api_gateway_method.this["predict"].http_method == "POST" && aws_api_gateway_resource.this["predict"].path_part == "predict" &&
      aws_api_gateway_method.this["health"].http_method == "GET" && aws_api_gateway_resource.this["health"].path_part == "health"
    )
    error_message = "Expected POST /predict and GET /health."
  }

  assert {
    condition     = alltrue([for integration in aws_api_gateway_integration.this : integration.type == "AWS_PROXY" && integration.uri == aws_lambda_alias.live.invoke_arn])
    error_message = "Both routes must be Lambda proxy integrations of the live alias."
  }

  assert {
    condition     = alltrue([for method in aws_api_gateway_method.this : method.api_key_required])
    error_message = "Every route must require the API key by default."
  }

  assert {
    condition     = length(aws_api_gateway_method.this) == 2 && length(aws_lambda_permission.api) == 2
    error_message = "No allowed origins, no OPTIONS routes."
  }

  assert {
    condition = (
      aws_api_gateway_request_validator.this.validate_request_body && aws_api_gateway_request_validator.this.validate_request_parameters &&
      aws_api_gateway_method.this["predict"].request_validator_id == aws_api_gateway_request_validator.this.id &&
      aws_api_gateway_method.this["predict"].request_parameters["method.request.header.Content-Type"]
    )
    error_message = "POST /predict must be validated (Content-Type required, JSON bodies against the model)."
  }

  assert {
    condition = (
      aws_api_gateway_method_settings.this.settings[0].throttling_rate_limit == 50 &&
      aws_api_gateway_method_settings.this.settings[0].throttling_burst_limit == 100 &&
      aws_api_gateway_stage.this.access_log_settings[0].destination_arn == aws_cloudwatch_log_group.access.arn
    )
    error_message = "The stage needs throttling and access logs."
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.name == "/aws/lambda/unit-api" && aws_cloudwatch_log_group.this.retention_in_days == 365
    error_message = "The function's log group must exist with a retention."
  }

  assert {
    condition     = aws_lambda_permission.api["predict"].source_arn == "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/POST/predict"
    error_message = "API Gateway may invoke the function for its own routes only."
  }

  assert {
    condition     = output.api_url == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    error_message = "api_url must be the stage URL without a trailing slash."
  }

  assert {
    condition     = length(aws_api_gateway_usage_plan_key.this) == 1 && aws_api_gateway_usage_plan.this[0].quota_settings[0].limit == 10000
    error_message = "The API key must be in a usage plan with a quota."
  }

  assert {
    condition     = jsondecode(aws_api_gateway_gateway_response.this["INVALID_API_KEY"].response_templates["application/json"]).error.code == "forbidden"
    error_message = "Gateway errors must use the API's error JSON shape."
  }

  assert {
    condition = alltrue([
      for response in aws_api_gateway_gateway_response.this :
      !strcontains(jsondecode(response.response_templates["application/json"]).error.message, "$")
    ])
    error_message = "Gateway error messages must be fixed text: a $context substitution inside a JSON string is not escaped."
  }
}

run "provisioned_concurrency_and_origins" {
  command = apply

  variables {
    reserved_concurrency    = 20
    provisioned_concurrency = 2
    allowed_origins         = ["https://a.example", "https://b.example"]
  }

  assert {
    condition     = aws_lambda_provisioned_concurrency_config.live[0].provisioned_concurrent_executions == 2 && aws_lambda_provisioned_concurrency_config.live[0].qualifier == "live"
    error_message = "Provisioned concurrency must be configured on the live alias."
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables["ALLOWED_ORIGINS"] == "https://a.example,https://b.example"
    error_message = "ALLOWED_ORIGINS must be comma-joined."
  }

  assert {
    condition = alltrue([
      for key in ["predict_preflight", "health_preflight"] :
      aws_api_gateway_method.this[key].http_method == "OPTIONS" && !aws_api_gateway_method.this[key].api_key_required &&
      aws_api_gateway_integration.this[key].type == "AWS_PROXY" && aws_api_gateway_integration.this[key].uri == aws_lambda_alias.live.invoke_arn
    ]) && aws_api_gateway_method.this["predict"].api_key_required
    error_message = "With allowed origins, OPTIONS on both routes must reach the function without an API key (CORS preflight)."
  }

  assert {
    condition     = aws_lambda_permission.api["predict_preflight"].source_arn == "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/OPTIONS/predict"
    error_message = "API Gateway may invoke the function for the preflight of its own routes only."
  }
}

run "vpc_config_only_with_subnets" {
  command = plan

  variables {
    subnet_ids         = ["subnet-aaa", "subnet-bbb"]
    security_group_ids = ["sg-123"]
  }

  assert {
    condition = (
      length(aws_lambda_function.this.vpc_config) == 1 &&
      toset(aws_lambda_function.this.vpc_config[0].subnet_ids) == toset(["subnet-aaa", "subnet-bbb"]) &&
      toset(aws_lambda_function.this.vpc_config[0].security_group_ids) == toset(["sg-123"])
    )
    error_message = "subnet_ids must attach the function to those subnets with its security groups."
  }
}

run "api_key_can_be_off" {
  command = apply

  variables {
    require_api_key = false
  }

  assert {
    condition     = length(aws_api_gateway_api_key.this) == 0 && alltrue([for method in aws_api_gateway_method.this : !method.api_key_required])
    error_message = "require_api_key = false must create no key and require none."
  }
}

run "rejects_timeout_at_gateway_limit" {
  command = plan

  variables {
    timeout_seconds = 29
  }

  expect_failures = [var.timeout_seconds]
}

run "rejects_endpoint_timeout_not_below_lambda_timeout" {
  command = plan

  variables {
    timeout_seconds          = 10
    endpoint_timeout_seconds = 10
  }

  expect_failures = [var.endpoint_timeout_seconds]
}

run "rejects_endpoint_timeout_leaving_no_time_for_url_fetch" {
  command = plan

  variables {
    # 20 + 3 (URL fetch) + 2 (connect) is not below the default 25 s.
    endpoint_timeout_seconds = 20
  }

  expect_failures = [var.endpoint_timeout_seconds]
}

run "counts_url_fetch_timeout_from_environment" {
  command = plan

  variables {
    endpoint_timeout_seconds = 15
    environment              = { URL_FETCH_TIMEOUT_SECONDS = "8" }
  }

  expect_failures = [var.endpoint_timeout_seconds]
}

run "accepts_endpoint_timeout_that_fits" {
  command = plan

  variables {
    endpoint_timeout_seconds = 19
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables["ENDPOINT_TIMEOUT_SECONDS"] == "19"
    error_message = "19 + 3 + 2 < 25 must be accepted."
  }
}

run "rejects_provisioned_above_reserved" {
  command = plan

  variables {
    reserved_concurrency    = 5
    provisioned_concurrency = 10
  }

  expect_failures = [var.provisioned_concurrency]
}
