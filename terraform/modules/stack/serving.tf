# The SageMaker endpoint and the API in front of it, only once there is a model to serve.

# SageMaker refuses a volume KMS key for instance types with instance-store (NVMe) volumes: decide from
# the EC2 catalogue (ml.<type> is the EC2 type <type>) rather than a list of families that goes stale.
data "aws_ec2_instance_type" "endpoint" {
  count = local.create_endpoint && !local.serverless && var.endpoint_instance_storage == null ? 1 : 0

  instance_type = trimprefix(var.endpoint_instance_type, "ml.")
}

locals {
  endpoint_has_instance_store = coalesce(
    var.endpoint_instance_storage,
    one(data.aws_ec2_instance_type.endpoint[*].instance_storage_supported),
    false,
  )
  # Serverless endpoints take no volume key either (SageMaker encrypts their storage itself).
  endpoint_kms_key_arn = local.serverless || local.endpoint_has_instance_store ? null : module.storage.kms_key_arn

  # Alarms notify the given topics, or a topic of the stack's own (with optional e-mail subscriptions).
  create_alarm_topic = local.create_endpoint && length(var.alarm_actions) == 0
  alarm_actions      = local.create_alarm_topic ? aws_sns_topic.alarms[*].arn : var.alarm_actions
}

resource "aws_sns_topic" "alarms" {
  count = local.create_alarm_topic ? 1 : 0

  name              = "${var.name}-alarms"
  kms_master_key_id = module.storage.kms_key_arn

  tags = var.tags
}

resource "aws_sns_topic_subscription" "alarm_emails" {
  for_each = local.create_alarm_topic ? toset(var.alarm_emails) : toset([])

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = each.value
}

module "endpoint" {
  source = "../endpoint"
  count  = local.create_endpoint ? 1 : 0

  name               = local.endpoint_name
  execution_role_arn = module.iam.sagemaker_role_arn
  model_data_url     = var.model_data_url
  image_tag          = var.image_tag
  image_uri          = var.image_uri
  mode               = var.endpoint_mode
  instance_type      = var.endpoint_instance_type
  # Serverless endpoints support neither VPC config nor network isolation.
  subnet_ids                         = local.serverless ? [] : module.network.private_subnet_ids
  security_group_ids                 = local.serverless ? [] : [module.network.workloads_security_group_id]
  enable_network_isolation           = !local.serverless
  kms_key_arn                        = local.endpoint_kms_key_arn
  initial_instance_count             = var.endpoint_initial_instance_count
  min_capacity                       = var.endpoint_min_capacity
  max_capacity                       = var.endpoint_max_capacity
  target_invocations_per_instance    = var.target_invocations_per_instance
  serverless_memory_size_mb          = var.serverless_memory_size_mb
  serverless_max_concurrency         = var.serverless_max_concurrency
  serverless_provisioned_concurrency = var.serverless_provisioned_concurrency
  alarm_actions                      = local.alarm_actions

  tags = var.tags
}

module "api" {
  source = "../api"
  count  = local.create_endpoint ? 1 : 0

  name            = local.lambda_function_name
  lambda_zip_path = var.lambda_zip_path
  lambda_role_arn = module.iam.lambda_role_arn
  endpoint_name   = module.endpoint[0].endpoint_name
  # A serverless endpoint takes at most 4 MB per request (6 MB for instances): the function sends it a
  # single image as raw bytes, so a 4 MiB image fits, and refuses larger bodies itself with a clear 413.
  environment = merge(var.lambda_environment, local.serverless ? {
    ENDPOINT_PAYLOAD           = "raw"
    ENDPOINT_MAX_PAYLOAD_BYTES = tostring(4 * 1024 * 1024)
  } : {})
  # A serverless cold start (image pull and model load) can take well over the 10 s that suit a warm
  # instance: wait up to 19 s (+ 3 s URL fetch + 2 s connect < the function's 25 s < API Gateway's 29 s).
  endpoint_timeout_seconds = local.serverless ? 19 : 10

  allowed_origins                = var.allowed_origins
  reserved_concurrency           = var.reserved_concurrency
  provisioned_concurrency        = var.provisioned_concurrency
  subnet_ids                     = local.lambda_in_vpc ? module.network.private_subnet_ids : []
  vpc_id                         = local.lambda_in_vpc ? module.network.vpc_id : null
  egress_security_group_ids      = local.lambda_in_vpc ? [module.network.endpoints_security_group_id] : []
  kms_key_arn                    = module.storage.kms_key_arn
  manage_account_cloudwatch_role = var.manage_api_gateway_account_role
  authorization                  = var.api_authorization
  cognito_user_pool_arns         = var.cognito_user_pool_arns
  enable_waf                     = var.enable_waf
  waf_rate_limit_per_5_minutes   = var.waf_rate_limit_per_5_minutes

  tags = var.tags
}

# The interface endpoints accept HTTPS from the workloads' group; a VPC-attached function has its own.
resource "aws_vpc_security_group_ingress_rule" "endpoints_from_lambda" {
  count = local.lambda_in_vpc ? 1 : 0

  security_group_id            = module.network.endpoints_security_group_id
  description                  = "HTTPS from the inference Lambda"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = module.api[0].lambda_security_group_id
}
