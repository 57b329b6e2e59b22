locals {
  routes = {
    predict = { method = "POST", path = "predict" }
    health  = { method = "GET", path = "health" }
  }
  # Browsers send a CORS preflight (OPTIONS, no API key) before a cross-origin POST with x-api-key. The
  # function answers it from ALLOWED_ORIGINS, so those methods exist only when some origin is allowed.
  preflight_methods = length(var.allowed_origins) > 0 ? {
    for key, route in local.routes : "${key}_preflight" => { method = "OPTIONS", path = route.path, resource = key }
  } : {}
  # Every method of every route, all Lambda proxy integrations of the live alias.
  methods = merge({ for key, route in local.routes : key => merge(route, { resource = key }) }, local.preflight_methods)
}

locals {
  method_authorization = { api_key = "NONE", iam = "AWS_IAM", cognito = "COGNITO_USER_POOLS" }[var.authorization]
}

resource "aws_api_gateway_authorizer" "cognito" {
  count = var.authorization == "cognito" ? 1 : 0

  name            = "${var.name}-cognito"
  rest_api_id     = aws_api_gateway_rest_api.this.id
  type            = "COGNITO_USER_POOLS"
  provider_arns   = var.cognito_user_pool_arns
  identity_source = "method.request.header.Authorization"
}

resource "aws_api_gateway_rest_api" "this" {
  name               = var.name
  description        = "Dog breed classifier: POST /predict, GET /health"
  binary_media_types = var.binary_media_types

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "this" {
  for_each = local.routes

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = each.value.path
}

resource "aws_api_gateway_request_validator" "this" {
  rest_api_id                 = aws_api_gateway_rest_api.this.id
  name                        = "body-and-parameters"
  validate_request_body       = true
  validate_request_parameters = true
}

# JSON bodies must at least be objects; the function checks the fields. Image bodies have no model.
resource "aws_api_gateway_model" "predict_json" {
  rest_api_id  = aws_api_gateway_rest_api.this.id
  name         = "PredictJson"
  description  = "A JSON prediction request: an object"
  content_type = "application/json"
  schema = jsonencode({
    "$schema" = "http://json-schema.org/draft-04/schema#"
    title     = "PredictJson"
    type      = "object"
  })
}

resource "aws_api_gateway_method" "this" {
  for_each = local.methods

  rest_api_id = aws_api_gateway_rest_api.this.id
  resource_id = aws_api_gateway_resource.this[each.value.resource].id
  http_method = each.value.method
  # Preflights carry no credentials; every other method takes the chosen authorization.
  authorization = each.value.method == "OPTIONS" ? "NONE" : local.method_authorization
  authorizer_id = each.value.method != "OPTIONS" && var.authorization == "cognito" ? aws_api_gateway_authorizer.cognito[0].id : null
  # Browsers never send custom headers (x-api-key) with a preflight.
  api_key_required     = var.require_api_key && each.value.method != "OPTIONS"
  request_validator_id = aws_api_gateway_request_validator.this.id

  request_parameters = each.key == "predict" ? { "method.request.header.Content-Type" = true } : {}
  request_models     = each.key == "predict" ? { "application/json" = aws_api_gateway_model.predict_json.name } : {}
}

resource "aws_api_gateway_integration" "this" {
  for_each = local.methods

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = aws_api_gateway_resource.this[each.value.resource].id
  http_method             = aws_api_gateway_method.this[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = aws_lambda_alias.live.invoke_arn
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  description = "Managed by Terraform"

  # A new deployment whenever anything the stage serves changes (only plan-time values here:
  # computed attributes would change the hash during apply).
  triggers = {
    redeployment = sha1(jsonencode([
      local.methods,
      local.gateway_responses,
      local.cors_response_parameters,
      var.binary_media_types,
      var.require_api_key,
      var.authorization,
      var.cognito_user_pool_arns,
      aws_api_gateway_model.predict_json.schema,
      [for route in aws_api_gateway_resource.this : route.id],
      [for method in aws_api_gateway_method.this : method.id],
      [for integration in aws_api_gateway_integration.this : integration.id],
      aws_api_gateway_request_validator.this.id,
      [aws_api_gateway_method.web_page.id, aws_api_gateway_integration.web_page.id], # web_page.tf
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [aws_api_gateway_gateway_response.this]
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "API-Gateway-Access-Logs_${aws_api_gateway_rest_api.this.id}/${var.stage_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

resource "aws_api_gateway_stage" "this" {
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      ip                 = "$context.identity.sourceIp"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      resourcePath       = "$context.resourcePath"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      integrationLatency = "$context.integrationLatency"
      integrationStatus  = "$context.integrationStatus"
      errorMessage       = "$context.error.message"
      apiKeyId           = "$context.identity.apiKeyId"
    })
  }

  tags = var.tags

  depends_on = [aws_api_gateway_account.this]
}

resource "aws_wafv2_web_acl_association" "this" {
  count = var.web_acl_arn != null || var.enable_waf ? 1 : 0

  resource_arn = aws_api_gateway_stage.this.arn
  web_acl_arn  = var.web_acl_arn != null ? var.web_acl_arn : aws_wafv2_web_acl.this[0].arn
}

resource "aws_api_gateway_method_settings" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
  }
}
