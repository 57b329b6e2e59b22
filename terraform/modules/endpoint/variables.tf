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

variable "mode" {
  description = "\"instance\": real-time inference on ML instances with autoscaling. \"serverless\": Serverless Inference (per-request billing, scales to zero, cold starts, CPU only, 4 MB payloads, no VPC config or network isolation)."
  type        = string
  default     = "instance"

  validation {
    condition     = contains(["instance", "serverless"], var.mode)
    error_message = "mode must be \"instance\" or \"serverless\"."
  }
}

variable "image_uri" {
  description = "Full URI of the inference image; null looks up the prebuilt image (image_repository_name, image_tag), which the provider cannot do in every region (e.g. mx-central-1)."
  type        = string
  default     = null
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
  description = "Instances a new endpoint configuration starts with; null uses min_capacity. A roll-out provisions this many instances for the new model (the provider does not retain the current count), so set it to the current instance count before rolling out under load."
  type        = number
  default     = null

  validation {
    condition     = var.initial_instance_count == null || coalesce(var.initial_instance_count, 1) >= 1
    error_message = "initial_instance_count must be at least 1."
  }
}

variable "serverless_memory_size_mb" {
  description = "Memory of a serverless endpoint in MB (mode = \"serverless\")."
  type        = number
  default     = 3072

  validation {
    condition     = contains([1024, 2048, 3072, 4096, 5120, 6144], var.serverless_memory_size_mb)
    error_message = "serverless_memory_size_mb must be 1024, 2048, 3072, 4096, 5120 or 6144."
  }
}

variable "serverless_max_concurrency" {
  description = "Most concurrent invocations of a serverless endpoint (mode = \"serverless\")."
  type        = number
  default     = 10

  validation {
    condition     = var.serverless_max_concurrency >= 1 && var.serverless_max_concurrency <= 200
    error_message = "serverless_max_concurrency must be between 1 and 200."
  }
}

variable "serverless_provisioned_concurrency" {
  description = "Provisioned (kept warm, billed hourly) concurrency of a serverless endpoint; null for none."
  type        = number
  default     = null

  validation {
    condition     = var.serverless_provisioned_concurrency == null || (coalesce(var.serverless_provisioned_concurrency, 1) >= 1 && coalesce(var.serverless_provisioned_concurrency, 1) <= var.serverless_max_concurrency)
    error_message = "serverless_provisioned_concurrency must be between 1 and serverless_max_concurrency, or null."
  }
}

variable "deployment_traffic_routing" {
  description = "How a roll-out shifts traffic to the new fleet: CANARY (deployment_step_percent first, then the rest), LINEAR (deployment_step_percent per step) or ALL_AT_ONCE; the alarms roll it back."
  type        = string
  default     = "CANARY"

  validation {
    condition     = contains(["CANARY", "LINEAR", "ALL_AT_ONCE"], var.deployment_traffic_routing)
    error_message = "deployment_traffic_routing must be CANARY, LINEAR or ALL_AT_ONCE."
  }
}

variable "deployment_step_percent" {
  description = "Share of capacity the canary (or each linear step) gets, in percent."
  type        = number
  default     = 25
}

variable "deployment_wait_interval_seconds" {
  description = "Seconds each traffic step bakes (alarms watched) before the next."
  type        = number
  default     = 600
}

variable "deployment_termination_wait_seconds" {
  description = "Seconds the old fleet is kept after all traffic moved (a quick manual roll-back stays possible)."
  type        = number
  default     = 300
}

variable "deployment_max_execution_seconds" {
  description = "Longest a roll-out may take before SageMaker rolls it back."
  type        = number
  default     = 3600
}

variable "variant_name" {
  description = "Name of the production variant."
  type        = string
  default     = "AllTraffic"
}

variable "kms_key_arn" {
  description = "Customer managed KMS key that encrypts the ML storage volumes; null uses an AWS managed key. Must be null for instance types with instance-store volumes (ml.g4dn, ml.g5, ml.p5e, ml.trn1, ml.*d, ...; the stack decides from the EC2 catalogue) and for serverless endpoints, which SageMaker rejects a key for. The execution role needs kms:CreateGrant and kms:DescribeKey on it."
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
  description = "Target value of SageMakerVariantInvocationsPerInstance (invocations per instance per minute) the policy tracks: AWS's guidance is the instance's peak requests per second x 0.5 x 60. The default, 1500, is the serving benchmark's 51.6 req/s for the ONNX runtime on 2 vCPUs (ml.m5.large), see README."
  type        = number
  default     = 1500

  validation {
    condition     = var.target_invocations_per_instance > 0
    error_message = "target_invocations_per_instance must be greater than 0."
  }
}

variable "scale_in_cooldown_seconds" {
  description = "Seconds after a scale-in before another scale-in (slow, so a lull does not drop instances that take minutes to come back)."
  type        = number
  default     = 600

  validation {
    condition     = var.scale_in_cooldown_seconds >= 0
    error_message = "scale_in_cooldown_seconds must not be negative."
  }
}

variable "scale_out_cooldown_seconds" {
  description = "Seconds after a scale-out before another scale-out: at least an instance's start (about 5 minutes), or the policy adds instances again before the first ones take traffic."
  type        = number
  default     = 300

  validation {
    condition     = var.scale_out_cooldown_seconds >= 120
    error_message = "scale_out_cooldown_seconds must be at least 120: a new endpoint instance takes minutes to start, and a shorter cooldown scales out again on the same load."
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
