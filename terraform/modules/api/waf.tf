# An optional web ACL in front of the stage: AWS's managed common rules and known bad inputs, and a
# per-IP rate limit, so abuse is stopped before it costs Lambda and endpoint time.
resource "aws_wafv2_web_acl" "this" {
  count = var.enable_waf && var.web_acl_arn == null ? 1 : 0

  name        = var.name
  description = "Managed rules and a per-IP rate limit for the ${var.name} API"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 0

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit_per_5_minutes
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  dynamic "rule" {
    for_each = { 1 = "AWSManagedRulesCommonRuleSet", 2 = "AWSManagedRulesKnownBadInputsRuleSet" }

    content {
      name     = rule.value
      priority = tonumber(rule.key)

      override_action {
        none {}
      }

      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.value

          # Image uploads are larger than the common rule set's 8 KB body limit: count, do not block.
          dynamic "rule_action_override" {
            for_each = rule.value == "AWSManagedRulesCommonRuleSet" ? ["SizeRestrictions_BODY"] : []

            content {
              name = rule_action_override.value

              action_to_use {
                count {}
              }
            }
          }
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${var.name}-${rule.value}"
        sampled_requests_enabled   = true
      }
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

# WAF only logs to log groups named aws-waf-logs-*.
resource "aws_cloudwatch_log_group" "waf" {
  count = length(aws_wafv2_web_acl.this)

  name              = "aws-waf-logs-${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  count = length(aws_wafv2_web_acl.this)

  resource_arn            = aws_wafv2_web_acl.this[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]
}
