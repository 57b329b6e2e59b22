terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Configure a remote backend (S3 with locking) for shared use, e.g. in backend.tf:
  # backend "s3" { bucket = "...", key = "dogbreed/terraform.tfstate", region = "...", use_lockfile = true }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project   = var.name
      ManagedBy = "terraform"
    })
  }
}
