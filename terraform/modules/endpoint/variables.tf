variable "name" {
  description = "Name of the SageMaker endpoint; the Lambda function calls it by this name. Also prefixes the model and endpoint configuration names."
  type        = string

  validation {
    condition     = length(var.name) <= 36 && can(regex("^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", var.name))
    error_message = "name must be 1-36 letters, digits and hyphens, starting and ending with a letter or digit (the endpoint configuration name adds a 27-character suffix to it)."
  }
}

variable "execution_role_arn" {
  description = "ARN of the SageMaker execution role (iam module)."
  type        = string
}

variable "model_data_url" {
  description = "S3 URI of the model artifact (model.tar.gz) the trainer wrote. A new URI rolls the endpoint onto a new model."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]+/.+\\.tar\\.gz$", var.model_data_url))
    error_message = "model_data_url must be an s3:// URI of a .tar.gz artifact, e.g. s3://my-bucket/models/run-1/model.tar.gz."
  }
}

variable "image_repository_name" {
  description = "Repository of the AWS prebuilt inference image."
  type        = string
  default     = "pytorch-inference"
}

variable "image_tag" {
  description = "Tag of the prebuilt PyTorch inference image; pick a CPU or GPU tag matching instance_type."
  type        = string
  default     = "2.6.0-cpu-py312"
}

variable "container_environment" {
  description = "Extra environment variables of the inference container (SAGEMAKER_PROGRAM and SAGEMAKER_SUBMIT_DIRECTORY are set already)."
  type        = map(string)
  default     = {}
}

variable "enable_network_isolation" {
  description = "Run the container without network access: the artifact's inference code downloads nothing."
  type        = bool
  default     = true
}

variable "subnet_ids" {
  description = "Private subnets for the model containers; empty runs them outside your VPC."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups of the model containers; used with subnet_ids."
  type        = list(string)
  default     = []
}

variable "instance_type" {
  description = "ML instance type of the production variant."
  type        = string
  default     = "ml.m5.large"

  validation {
    condition     = startswith(var.instance_type, "ml.")
    error_message = "instance_type must be a SageMaker ML instance type, e.g. ml.m5.large."
  }
}

variable "initial_instance_count" {
  description = "Instances the variant starts with (autoscaling takes over from there)."
  type        = number
  default     = 1

  validation {
    condition     = var.initial_instance_count >= 1
    error_message = "initial_instance_count must be at least 1."
  }
}

variable "variant_name" {
  description = "Name of the production variant."
  type        = string
  default     = "AllTraffic"
}

variable "kms_key_arn" {
  description = "Customer managed KMS key that encrypts the ML storage volumes; null uses an AWS managed key. Must be null for instance types with instance-store volumes (ml.g4dn, ml.g5, ml.c5d, ...), which SageMaker rejects a key for."
  type        = string
  default     = null
}

variable "enable_autoscaling" {
  description = "Register the variant with Application Auto Scaling and attach a target-tracking policy."
  type        = bool
  default     = true
}

variable "min_capacity" {
  description = "Fewest instances autoscaling keeps."
  type        = number
  default     = 1

  validation {
    condition     = var.min_capacity >= 1
    error_message = "min_capacity must be at least 1: a real-time endpoint cannot scale to zero."
  }
}

variable "max_capacity" {
  description = "Most instances autoscaling adds."
  type        = number
  default     = 4

  validation {
    condition     = var.max_capacity >= var.min_capacity
    error_message = "max_capacity must be greater than or equal to min_capacity."
  }
}

variable "target_invocations_per_instance" {
  description = "Target value of SageMakerVariantInvocationsPerInstance (invocations per instance per minute) the policy tracks."
  type        = number
  default     = 15

  validation {
    condition     = var.target_invocations_per_instance > 0
    error_message = "target_invocations_per_instance must be greater than 0."
  }
}

variable "scale_in_cooldown_seconds" {
  description = "Seconds after a scale-in before another scale-in."
  type        = number
  default     = 300

  validation {
    condition     = var.scale_in_cooldown_seconds >= 0
    error_message = "scale_in_cooldown_seconds must not be negative."
  }
}

variable "scale_out_cooldown_seconds" {
  description = "Seconds after a scale-out before another scale-out."
  type        = number
  default     = 30

  validation {
    condition     = var.scale_out_cooldown_seconds >= 0
    error_message = "scale_out_cooldown_seconds must not be negative."
  }
}

variable "enable_alarms" {
  description = "Create the CloudWatch alarms on 5xx errors and model latency."
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "ARNs (SNS topics, say) notified when an alarm fires or recovers."
  type        = list(string)
  default     = []
}

variable "error_5xx_threshold" {
  description = "5xx invocation errors per 5 minutes that raise the errors alarm."
  type        = number
  default     = 1
}

variable "model_latency_threshold_ms" {
  description = "Average model latency in milliseconds over 5 minutes that raises the latency alarm."
  type        = number
  default     = 1000
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
