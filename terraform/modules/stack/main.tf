# The whole stack, composed once: envs/aws calls it for a real account, envs/local for moto.
# What exists follows from the inputs, so every documented flow is a plain `terraform apply`:
#   - storage, network and IAM always;
#   - the endpoint, its alarms and the API only once model_data_url names an artifact;
#   - the trainer host, its SSM endpoints and its role only with enable_trainer_host;
#   - NAT (and the workloads' internet egress) only with enable_nat_gateway.

locals {
  endpoint_name        = "${var.name}-endpoint"
  lambda_function_name = "${var.name}-api"

  create_endpoint = var.model_data_url != null
  serverless      = var.endpoint_mode == "serverless"

  # The Lambda needs no VPC to call the endpoint (IAM-authenticated), and outside one it reaches the
  # internet for URL mode without NAT.
  lambda_in_vpc = var.lambda_in_vpc && local.create_endpoint

  # Interface endpoints are billed per hour and zone: only for what runs in the VPC and uses them.
  # The trainer host needs SSM (Session Manager, the set-up status parameter) and CloudWatch Logs; a
  # VPC-attached Lambda needs the SageMaker runtime and X-Ray. The endpoint itself needs none (SageMaker
  # pulls the image and the artifact through its own network; S3 has the free gateway endpoint).
  interface_endpoint_services = concat(
    var.enable_trainer_host ? ["ssm", "ssmmessages", "ec2messages", "logs"] : [],
    local.lambda_in_vpc ? ["sagemaker.runtime", "xray"] : [],
  )
}

module "storage" {
  source = "../storage"

  name                         = var.name
  enforce_tls                  = var.enforce_tls
  force_destroy                = var.force_destroy
  kms_key_deletion_window_days = var.kms_key_deletion_window_days
  noncurrent_versions_to_keep  = var.noncurrent_versions_to_keep
  allow_cloudwatch_alarms      = true

  tags = var.tags
}

module "network" {
  source = "../network"

  name                        = var.name
  azs                         = var.azs
  enable_nat_gateway          = var.enable_nat_gateway
  interface_endpoint_services = local.interface_endpoint_services
  kms_key_arn                 = module.storage.kms_key_arn

  tags = var.tags
}

module "iam" {
  source = "../iam"

  name                            = var.name
  bucket_arn                      = module.storage.bucket_arn
  kms_key_arn                     = module.storage.kms_key_arn
  data_prefix                     = module.storage.data_prefix
  model_prefix                    = module.storage.model_prefix
  code_prefix                     = module.storage.code_prefix
  endpoint_name                   = local.endpoint_name
  lambda_function_name            = local.lambda_function_name
  create_trainer_instance_profile = var.enable_trainer_host
  trainer_status_parameter_name   = local.trainer_status_parameter_name
  lambda_in_vpc                   = local.lambda_in_vpc
  # A serverless endpoint runs outside the VPC (SageMaker does not support VPC config for it).
  sagemaker_in_vpc = !local.serverless
  vpc_id           = module.network.vpc_id
  subnet_ids       = module.network.private_subnet_ids

  tags = var.tags
}
