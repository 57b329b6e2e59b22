# The stack for a real AWS account: everything is in modules/stack, shared with envs/local.
module "stack" {
  source = "../../modules/stack"

  name                               = var.name
  model_data_url                     = var.model_data_url
  lambda_zip_path                    = var.lambda_zip_path
  endpoint_mode                      = var.endpoint_mode
  image_tag                          = var.image_tag
  image_uri                          = var.image_uri
  endpoint_instance_type             = var.endpoint_instance_type
  endpoint_instance_storage          = var.endpoint_instance_storage
  endpoint_initial_instance_count    = var.endpoint_initial_instance_count
  endpoint_min_capacity              = var.endpoint_min_capacity
  endpoint_max_capacity              = var.endpoint_max_capacity
  target_invocations_per_instance    = var.target_invocations_per_instance
  serverless_memory_size_mb          = var.serverless_memory_size_mb
  serverless_max_concurrency         = var.serverless_max_concurrency
  serverless_provisioned_concurrency = var.serverless_provisioned_concurrency
  enable_trainer_host                = var.enable_trainer_host
  trainer_instance_type              = var.trainer_instance_type
  trainer_ami_type                   = var.trainer_ami_type
  trainer_package_s3_uri             = var.trainer_package_s3_uri
  trainer_pip_spec                   = var.trainer_pip_spec
  enable_nat_gateway                 = var.enable_nat_gateway
  lambda_in_vpc                      = var.lambda_in_vpc
  reserved_concurrency               = var.reserved_concurrency
  provisioned_concurrency            = var.provisioned_concurrency
  allowed_origins                    = var.allowed_origins
  api_authorization                  = var.api_authorization
  cognito_user_pool_arns             = var.cognito_user_pool_arns
  enable_waf                         = var.enable_waf
  manage_api_gateway_account_role    = var.manage_api_gateway_account_role
  alarm_actions                      = var.alarm_actions
  alarm_emails                       = var.alarm_emails
}

# State written before the stack module existed (the modules sat in this root module) moves, not rebuilds.
moved {
  from = module.storage
  to   = module.stack.module.storage
}

moved {
  from = module.network
  to   = module.stack.module.network
}

moved {
  from = module.iam
  to   = module.stack.module.iam
}

moved {
  from = module.trainer_host
  to   = module.stack.module.trainer_host
}

moved {
  from = module.endpoint
  to   = module.stack.module.endpoint[0]
}

moved {
  from = module.api
  to   = module.stack.module.api[0]
}
