data "aws_sagemaker_prebuilt_ecr_image" "this" {
  repository_name = var.image_repository_name
  image_tag       = var.image_tag
}

locals {
  environment = merge(var.container_environment, {
    # model.tar.gz carries code/inference.py; the container runs it from the extracted artifact.
    SAGEMAKER_PROGRAM          = "inference.py"
    SAGEMAKER_SUBMIT_DIRECTORY = "/opt/ml/model/code"
  })

  # Model names must be unique, so a new artifact (or any other change that replaces the model)
  # gets a new name and the endpoint moves to it before the old model is deleted.
  model_fingerprint = substr(sha256(jsonencode({
    image              = data.aws_sagemaker_prebuilt_ecr_image.this.registry_path
    model_data_url     = var.model_data_url
    environment        = local.environment
    execution_role_arn = var.execution_role_arn
    network_isolation  = var.enable_network_isolation
    subnet_ids         = var.subnet_ids
    security_group_ids = var.security_group_ids
  })), 0, 12)

  resource_id = "endpoint/${aws_sagemaker_endpoint.this.name}/variant/${var.variant_name}"
}

resource "aws_sagemaker_model" "this" {
  name                     = "${var.name}-${local.model_fingerprint}"
  execution_role_arn       = var.execution_role_arn
  enable_network_isolation = var.enable_network_isolation

  primary_container {
    image          = data.aws_sagemaker_prebuilt_ecr_image.this.registry_path
    model_data_url = var.model_data_url
    environment    = local.environment
  }

  dynamic "vpc_config" {
    for_each = length(var.subnet_ids) > 0 ? [1] : []

    content {
      subnets            = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_sagemaker_endpoint_configuration" "this" {
  name_prefix = "${var.name}-"
  kms_key_arn = var.kms_key_arn

  production_variants {
    variant_name           = var.variant_name
    model_name             = aws_sagemaker_model.this.name
    instance_type          = var.instance_type
    initial_instance_count = var.initial_instance_count
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_sagemaker_endpoint" "this" {
  name                 = var.name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.this.name

  tags = var.tags
}
