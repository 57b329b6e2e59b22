locals {
  # The host reports how its set-up went here ("pending", then "ok" or "failed: <step>").
  trainer_status_parameter_name = "/${var.name}/trainer/setup-status"
}

module "trainer_host" {
  source = "../trainer_host"

  name                      = "${var.name}-trainer"
  enabled                   = var.enable_trainer_host
  instance_type             = var.trainer_instance_type
  ami_id                    = var.trainer_ami_id
  ami_type                  = var.trainer_ami_type
  subnet_id                 = module.network.private_subnet_ids[0]
  security_group_ids        = [module.network.workloads_security_group_id]
  iam_instance_profile_name = module.iam.trainer_instance_profile_name
  bucket_name               = module.storage.bucket_name
  data_prefix               = module.storage.data_prefix
  model_prefix              = module.storage.model_prefix
  trainer_package_s3_uri    = var.trainer_package_s3_uri
  trainer_pip_spec          = var.trainer_pip_spec
  status_parameter_name     = local.trainer_status_parameter_name
  detailed_monitoring       = var.trainer_detailed_monitoring

  tags = var.tags
}
