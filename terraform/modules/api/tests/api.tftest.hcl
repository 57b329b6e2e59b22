mock_provider "aws" {
  source = "./tests/mocks"
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
    condition     = aws_lambda_function.this.reserved_concurrent_executions == null && length(aws_lambda_provisioned_concurrency_config.live) == 0
    error_message = "No reserved concurrency by default (a new account with a limit of 10 cannot reserve any), and no provisioned concurrency."
  }

  assert {
    condition     = aws_lambda_function.this.runtime == jsondecode(file("runtime.json")).runtime && aws_lambda_function.this.runtime == "python3.12"
    error_message = "The function's runtime must come from runtime.json, which the zip build reads too."
  }

  assert {
    condition     = length(aws_api_gateway_account.this) == 0 && length(aws_iam_role.apigateway_cloudwatch) == 0
    error_message = "The region-wide API Gateway CloudWatch role must be left alone by default (replacing or destroying it breaks other APIs' logging)."
  }

  assert {
    condition     = alltrue([for method in aws_api_gateway_method.this : method.authorization == "NONE"]) && length(aws_wafv2_web_acl.this) == 0
    error_message = "By default the API key alone authenticates and no web ACL is created."
  }

  assert {
    condition     = alltrue([for response in aws_api_gateway_gateway_response.this : length(response.response_parameters) == 0])
    error_message = "Without CORS origins the gateway responses carry no CORS header."
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

  assert {
    condition = alltrue([
      for type in ["INVALID_API_KEY", "THROTTLED", "QUOTA_EXCEEDED", "INTEGRATION_TIMEOUT", "DEFAULT_5XX"] :
      aws_api_gateway_gateway_response.this[type].response_parameters["gatewayresponse.header.Access-Control-Allow-Origin"] == "method.request.header.Origin" &&
      aws_api_gateway_gateway_response.this[type].response_parameters["gatewayresponse.header.Vary"] == "'Origin'"
    ])
    error_message = "With several origins, the gateway's own 403/429/504/5xx answers must carry Access-Control-Allow-Origin (the request's Origin) and Vary: Origin."
  }
}

run "one_origin_is_sent_as_is_on_gateway_errors" {
  command = plan

  variables {
    allowed_origins = ["https://a.example"]
  }

  assert {
    condition     = aws_api_gateway_gateway_response.this["THROTTLED"].response_parameters["gatewayresponse.header.Access-Control-Allow-Origin"] == "'https://a.example'"
    error_message = "With one origin, the gateway's own answers must carry it as Access-Control-Allow-Origin."
  }
}

run "iam_authorization" {
  command = plan

  variables {
    authorization   = "iam"
    allowed_origins = ["https://a.example"]
  }

  assert {
    condition = (
      aws_api_gateway_method.this["predict"].authorization == "AWS_IAM" && aws_api_gateway_method.this["health"].authorization == "AWS_IAM" &&
      aws_api_gateway_method.this["predict"].api_key_required && aws_api_gateway_method.this["predict_preflight"].authorization == "NONE"
    )
    error_message = "authorization = iam must require SigV4 on every route but the preflights, and keep the API key for metering."
  }
}

run "cognito_authorization" {
  command = plan

  variables {
    authorization          = "cognito"
    cognito_user_pool_arns = ["arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_abc"]
  }

  assert {
    condition = (
      aws_api_gateway_method.this["predict"].authorization == "COGNITO_USER_POOLS" &&
      aws_api_gateway_authorizer.cognito[0].type == "COGNITO_USER_POOLS" &&
      aws_api_gateway_authorizer.cognito[0].provider_arns == toset(var.cognito_user_pool_arns) &&
      aws_api_gateway_authorizer.cognito[0].identity_source == "method.request.header.Authorization"
    )
    error_message = "authorization = cognito must check the user pool's JWT in the Authorization header."
  }
}

run "cognito_needs_a_user_pool" {
  command = plan

  variables {
    authorization = "cognito"
  }

  expect_failures = [var.cognito_user_pool_arns]
}

run "waf_with_managed_rules_and_rate_limit" {
  command = apply

  variables {
    enable_waf                   = true
    waf_rate_limit_per_5_minutes = 500
  }

  assert {
    condition = (
      aws_wafv2_web_acl.this[0].scope == "REGIONAL" &&
      toset([for rule in aws_wafv2_web_acl.this[0].rule : rule.name]) == toset(["rate-limit-per-ip", "AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"]) &&
      one([for rule in aws_wafv2_web_acl.this[0].rule : rule.statement[0].rate_based_statement[0].limit if rule.name == "rate-limit-per-ip"]) == 500 &&
      aws_wafv2_web_acl_association.this[0].web_acl_arn == aws_wafv2_web_acl.this[0].arn
    )
    error_message = "enable_waf must put a web ACL with AWS managed rules and a per-IP rate limit on the stage."
  }
}

run "account_cloudwatch_role_when_asked" {
  command = plan

  variables {
    manage_account_cloudwatch_role = true
  }

  assert {
    condition     = length(aws_api_gateway_account.this) == 1
    error_message = "manage_account_cloudwatch_role = true must set the region's API Gateway CloudWatch role."
  }
}

run "vpc_config_only_with_subnets" {
  command = plan

  variables {
    subnet_ids                = ["subnet-aaa", "subnet-bbb"]
    vpc_id                    = "vpc-123"
    egress_security_group_ids = ["sg-endpoints"]
  }

  assert {
    condition = (
      length(aws_lambda_function.this.vpc_config) == 1 &&
      toset(aws_lambda_function.this.vpc_config[0].subnet_ids) == toset(["subnet-aaa", "subnet-bbb"]) &&
      aws_security_group.lambda[0].vpc_id == "vpc-123" &&
      aws_vpc_security_group_egress_rule.lambda_endpoints["sg-endpoints"].referenced_security_group_id == "sg-endpoints"
    )
    error_message = "subnet_ids must attach the function to those subnets with a security group of its own."
  }

  assert {
    condition     = aws_lambda_function.this.replace_security_groups_on_destroy == true
    error_message = "A VPC function must swap its security groups out before destroy, or destroy hangs on its network interfaces."
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
