terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

# Every call goes to the moto server; nothing here can reach AWS.
provider "aws" {
  region     = var.region
  access_key = "testing"
  secret_key = "testing"

  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  # Must stay false: with it the provider leaves the account id out of the ARNs it builds.
  skip_requesting_account_id = false
  s3_use_path_style          = true
  # moto answers 500 for calls it does not implement; the default retries would wait minutes on each.
  max_retries = 1

  endpoints {
    apigateway             = var.moto_endpoint
    applicationautoscaling = var.moto_endpoint
    cloudwatch             = var.moto_endpoint
    ec2                    = var.moto_endpoint
    iam                    = var.moto_endpoint
    kms                    = var.moto_endpoint
    lambda                 = var.moto_endpoint
    logs                   = var.moto_endpoint
    s3                     = var.moto_endpoint
    sagemaker              = var.moto_endpoint
    sns                    = var.moto_endpoint
    ssm                    = var.moto_endpoint
    sts                    = var.moto_endpoint
  }

  default_tags {
    tags = {
      Project   = var.name
      ManagedBy = "terraform"
    }
  }
}
