resource "aws_api_gateway_api_key" "this" {
  count = var.require_api_key ? 1 : 0

  name        = var.name
  description = "Key of the ${var.name} API's usage plan"
  enabled     = true

  tags = var.tags
}

resource "aws_api_gateway_usage_plan" "this" {
  count = var.require_api_key ? 1 : 0

  name        = var.name
  description = "Throttling and quota for the ${var.name} API key"

  api_stages {
    api_id = aws_api_gateway_rest_api.this.id
    stage  = aws_api_gateway_stage.this.stage_name
  }

  throttle_settings {
    rate_limit  = var.throttling_rate_limit
    burst_limit = var.throttling_burst_limit
  }

  dynamic "quota_settings" {
    for_each = var.quota_limit_per_day > 0 ? [1] : []

    content {
      limit  = var.quota_limit_per_day
      period = "DAY"
    }
  }

  tags = var.tags
}

resource "aws_api_gateway_usage_plan_key" "this" {
  count = var.require_api_key ? 1 : 0

  key_id        = aws_api_gateway_api_key.this[0].id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.this[0].id
}
