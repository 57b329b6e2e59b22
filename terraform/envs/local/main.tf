# The aws environment's composition with the settings an emulator needs: moto ignores bucket-policy
# conditions (a TLS-only deny would then deny everything), drops NewerNoncurrentVersions from
# lifecycle rules, has no detailed EC2 monitoring and no Deep Learning AMI of today, and buckets must
# go away on destroy.

locals {
  endpoint_name        = "${var.name}-endpoint"
  lambda_function_name = "${var.name}-api"

  # The Lambda needs no VPC to call the endpoint (IAM-authenticated), and outside one it reaches the
  # internet for URL mode without NAT.
  lambda_subnet_ids         = var.lambda_in_vpc ? module.network.private_subnet_ids : []
  lambda_security_group_ids = var.lambda_in_vpc ? [module.network.workloads_security_group_id] : []

  # As in envs/aws: the SageMaker runtime and X-Ray endpoints only serve a VPC-attached Lambda.
  interface_endpoint_services = concat(
    ["ssm", "ssmmessages", "ec2messages", "logs"],
    var.lambda_in_vpc ? ["sagemaker.runtime", "xray"] : [],
  )
}

module "storage" {
  source = "../../modules/storage"

  name                         = var.name
  enforce_tls                  = false
  force_destroy                = true
  kms_key_deletion_window_days = 7
  # moto drops NewerNoncurrentVersions from lifecycle rules, and the provider then waits for it forever.
  noncurrent_versions_to_keep = null
}

module "network" {
  source = "../../modules/network"

  name                        = var.name
  azs                         = ["${var.region}a", "${var.region}b"]
  interface_endpoint_services = local.interface_endpoint_services
  kms_key_arn                 = module.storage.kms_key_arn
}

module "iam" {
  source = "../../modules/iam"

  name                 = var.name
  bucket_arn           = module.storage.bucket_arn
  kms_key_arn          = module.storage.kms_key_arn
  data_prefix          = module.storage.data_prefix
  model_prefix         = module.storage.model_prefix
  code_prefix          = module.storage.code_prefix
  endpoint_name        = local.endpoint_name
  lambda_function_name = local.lambda_function_name
  lambda_in_vpc        = var.lambda_in_vpc
}

module "endpoint" {
  source = "../../modules/endpoint"

  name               = local.endpoint_name
  execution_role_arn = module.iam.sagemaker_role_arn
  model_data_url     = coalesce(var.model_data_url, "${module.storage.model_s3_uri}local/model.tar.gz")
  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [module.network.workloads_security_group_id]
  kms_key_arn        = module.storage.kms_key_arn
}

module "api" {
  source = "../../modules/api"

  name               = local.lambda_function_name
  lambda_zip_path    = var.lambda_zip_path
  lambda_role_arn    = module.iam.lambda_role_arn
  endpoint_name      = module.endpoint.endpoint_name
  subnet_ids         = local.lambda_subnet_ids
  security_group_ids = local.lambda_security_group_ids
  kms_key_arn        = module.storage.kms_key_arn
}

module "trainer_host" {
  source = "../../modules/trainer_host"

  name                      = "${var.name}-trainer"
  subnet_id                 = module.network.private_subnet_ids[0]
  security_group_ids        = [module.network.workloads_security_group_id]
  iam_instance_profile_name = module.iam.trainer_instance_profile_name
  bucket_name               = module.storage.bucket_name
  data_prefix               = module.storage.data_prefix
  model_prefix              = module.storage.model_prefix
  detailed_monitoring       = false
  # moto's catalogue holds an old Deep Learning AMI under the real DLAMI owner account.
  ami_name_filter = "Deep Learning AMI Ubuntu*"
  ami_owners      = ["898082745236"]
}
