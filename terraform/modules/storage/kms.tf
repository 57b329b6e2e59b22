locals {
  account_root_arn = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"

  # The account administers the key through IAM, as with the default key policy; the roles of the
  # iam module get their kms:Decrypt/GenerateDataKey grants from their own policies.
  kms_account_statement = {
    Sid       = "AccountAdministersKey"
    Effect    = "Allow"
    Principal = { AWS = local.account_root_arn }
    Action    = "kms:*"
    Resource  = "*" # In a key policy "*" means this key.
  }

  # Lets the stack's log groups (flow logs, Lambda, API access logs) be encrypted with this key too.
  kms_logs_statement = {
    Sid       = "CloudWatchLogsUseKey"
    Effect    = "Allow"
    Principal = { Service = "logs.${data.aws_region.current.name}.amazonaws.com" }
    Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    Resource  = "*"
    Condition = {
      ArnLike = {
        "kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*"
      }
    }
  }

  # CloudWatch alarms publish to the stack's encrypted alarm topic.
  kms_alarms_statement = {
    Sid       = "CloudWatchAlarmsUseKey"
    Effect    = "Allow"
    Principal = { Service = "cloudwatch.amazonaws.com" }
    Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
    Resource  = "*"
    Condition = {
      StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
    }
  }

  kms_statements = concat(
    [local.kms_account_statement],
    [for statement in [local.kms_logs_statement] : statement if var.allow_cloudwatch_logs],
    [for statement in [local.kms_alarms_statement] : statement if var.allow_cloudwatch_alarms],
  )
}

resource "aws_kms_key" "this" {
  description             = "Encrypts the ${var.name} data and model artifacts bucket"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_days
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.kms_statements
  })

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}-artifacts"
  target_key_id = aws_kms_key.this.key_id
}
