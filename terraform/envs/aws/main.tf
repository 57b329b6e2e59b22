locals {
  endpoint_name        = "${var.name}-endpoint"
  lambda_function_name = "${var.name}-api"

  # SageMaker refuses a volume KMS key for instance types that come with instance-store (NVMe) volumes.
  endpoint_has_instance_store = can(regex("^ml\\.(g4dn|g5|g6|g6e|p3dn|p4d|p4de|p5|c5d|m5d|r5d|c6id|m6id|r6id)\\.", var.endpoint_instance_type))

  # The Lambda needs no VPC to call the endpoint (IAM-authenticated), and outside one it reaches the
  # internet for URL mode without NAT.
  lambda_subnet_ids         = var.lambda_in_vpc ? module.network.private_subnet_ids : []
  lambda_security_group_ids = var.lambda_in_vpc ? [module.network.workloads_security_group_id] : []

  # The trainer host reaches SSM and CloudWatch Logs privately; a VPC-attached Lambda also needs the
  # SageMaker runtime and X-Ray (interface endpoints are billed per hour and zone, so only then).
  interface_endpoint_services = concat(
    ["ssm", "ssmmessages", "ec2messages", "logs"],
    var.lambda_in_vpc ? ["sagemaker.runtime", "xray"] : [],
  )
}

module "storage" {
  source = "../../modules/storage"

  name = var.name
}

module "network" {
  source = "../../modules/network"

  name                        = var.name
  enable_nat_gateway          = var.enable_nat_gateway
  interface_endpoint_services = local.interface_endpoint_services
  kms_key_arn                 = module.storage.kms_key_arn
}

module "iam" {
  source = "../../modules/iam"

  name                            = var.name
  bucket_arn                      = module.storage.bucket_arn
  kms_key_arn                     = module.storage.kms_key_arn
  data_prefix                     = module.storage.data_prefix
  model_prefix                    = module.storage.model_prefix
  code_prefix                     = module.storage.code_prefix
  endpoint_name                   = local.endpoint_name
  lambda_function_name            = local.lambda_function_name
  create_trainer_instance_profile = var.enable_trainer_host
  lambda_in_vpc                   = var.lambda_in_vpc
}

module "endpoint" {
  source = "../../modules/endpoint"

  name                            = local.endpoint_name
  execution_role_arn              = module.iam.sagemaker_role_arn
  model_data_url                  = var.model_data_url
  image_tag                       = var.image_tag
  instance_type                   = var.endpoint_instance_type
  subnet_ids                      = module.network.private_subnet_ids
  security_group_ids              = [module.network.workloads_security_group_id]
  kms_key_arn                     = local.endpoint_has_instance_store ? null : module.storage.kms_key_arn
  min_capacity                    = var.endpoint_min_capacity
  max_capacity                    = var.endpoint_max_capacity
  target_invocations_per_instance = var.target_invocations_per_instance
  alarm_actions                   = var.alarm_actions
}

module "api" {
  source = "../../modules/api"

  name                           = local.lambda_function_name
  lambda_zip_path                = var.lambda_zip_path
  lambda_role_arn                = module.iam.lambda_role_arn
  endpoint_name                  = module.endpoint.endpoint_name
  allowed_origins                = var.allowed_origins
  reserved_concurrency           = var.reserved_concurrency
  provisioned_concurrency        = var.provisioned_concurrency
  subnet_ids                     = local.lambda_subnet_ids
  security_group_ids             = local.lambda_security_group_ids
  kms_key_arn                    = module.storage.kms_key_arn
  manage_account_cloudwatch_role = var.manage_api_gateway_account_role
}

module "trainer_host" {
  source = "../../modules/trainer_host"

  name                      = "${var.name}-trainer"
  enabled                   = var.enable_trainer_host
  instance_type             = var.trainer_instance_type
  subnet_id                 = module.network.private_subnet_ids[0]
  security_group_ids        = [module.network.workloads_security_group_id]
  iam_instance_profile_name = module.iam.trainer_instance_profile_name
  bucket_name               = module.storage.bucket_name
  data_prefix               = module.storage.data_prefix
  model_prefix              = module.storage.model_prefix
  trainer_package_s3_uri    = var.trainer_package_s3_uri
  trainer_pip_spec          = var.trainer_pip_spec
}

# A warning, not an error: uploads still work without NAT, only URL mode cannot fetch.
check "lambda_in_vpc_reaches_the_internet" {
  assert {
    condition     = !var.lambda_in_vpc || var.enable_nat_gateway
    error_message = "lambda_in_vpc = true without enable_nat_gateway = true: the function has no route to the internet, so URL mode ({\"url\": ...}) fails with url_fetch_failed. Image uploads still work."
  }
}
