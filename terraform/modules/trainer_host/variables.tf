variable "name" {
  description = "Name of the trainer host (its Name tag)."
  type        = string
}

variable "enabled" {
  description = "Create the trainer host. Switch off between training runs: a GPU instance costs money every hour it runs."
  type        = bool
  default     = true
}

variable "instance_type" {
  description = "EC2 instance type; must be a GPU family (g4dn, g5, g6, p3, p4d, p5, ...)."
  type        = string
  default     = "g4dn.xlarge"

  validation {
    # NVIDIA/AMD GPU families only: a CPU instance would run the training for days.
    condition     = can(regex("^(p[2-6][a-z0-9-]*|g[3-6][a-z0-9-]*|gr6[a-z]*)\\.[0-9]*[a-z]+$", var.instance_type))
    error_message = "instance_type must be a GPU instance type (a p2-p6 or g3-g6 family, e.g. g4dn.xlarge, g5.2xlarge, p3.2xlarge)."
  }
}

variable "ami_id" {
  description = "AMI to launch; null reads the newest Deep Learning AMI of ami_type from its public SSM parameter."
  type        = string
  default     = null
}

variable "ami_type" {
  description = "Deep Learning AMI type (x86_64) whose newest id AWS publishes at /aws/service/deeplearning/ami/x86_64/<type>/latest/ami-id; used when ami_id is null."
  type        = string
  default     = "oss-nvidia-driver-gpu-pytorch-2.10-ubuntu-24.04"
}

variable "status_parameter_name" {
  description = "Name of an SSM parameter the host sets to \"ok\" or \"failed: <step>\" when its set-up ends (created here as \"pending\"); null for none. The instance profile needs ssm:PutParameter on it."
  type        = string
  default     = null
}

variable "subnet_id" {
  description = "ID of the private subnet the host runs in."
  type        = string
}

variable "security_group_ids" {
  description = "Security groups of the host; none needs an inbound rule, Session Manager connects outbound."
  type        = list(string)
}

variable "iam_instance_profile_name" {
  description = "Instance profile with the bucket and SSM permissions (iam module); required when enabled."
  type        = string
  default     = null

  validation {
    condition     = !var.enabled || var.iam_instance_profile_name != null
    error_message = "iam_instance_profile_name is required when enabled is true: without it the host has no SSM access."
  }
}

variable "root_volume_size_gb" {
  description = "Size of the encrypted root volume in GiB (the Deep Learning AMI alone needs about 100)."
  type        = number
  default     = 200

  validation {
    condition     = var.root_volume_size_gb >= 100
    error_message = "root_volume_size_gb must be at least 100: the Deep Learning AMI does not fit in less."
  }
}

variable "root_volume_kms_key_arn" {
  description = "Customer managed KMS key for the root volume; null uses the account's default EBS key."
  type        = string
  default     = null
}

variable "detailed_monitoring" {
  description = "Enable one-minute detailed CloudWatch monitoring."
  type        = bool
  default     = true
}

variable "bucket_name" {
  description = "Bucket holding the data, the models and the trainer package."
  type        = string
}

variable "data_prefix" {
  description = "Key prefix of the training data; user data syncs it into data_dir."
  type        = string
  default     = "data/"
}

variable "model_prefix" {
  description = "Key prefix of the model artifacts; shown in the ready message of the user data."
  type        = string
  default     = "models/"
}

variable "trainer_package_s3_uri" {
  description = "S3 URI of the trainer wheel (built from services/trainer) that user data installs; null skips this source."
  type        = string
  default     = null

  validation {
    condition     = var.trainer_package_s3_uri == null || can(regex("^s3://[^/]+/.+\\.(whl|tar\\.gz)$", coalesce(var.trainer_package_s3_uri, "s3://b/x.whl")))
    error_message = "trainer_package_s3_uri must be an s3:// URI of a .whl or .tar.gz file."
  }
}

variable "trainer_pip_spec" {
  description = "pip requirement user data installs when trainer_package_s3_uri is null, e.g. \"git+https://github.com/org/repo#subdirectory=services/trainer\" (needs enable_nat_gateway in the network module)."
  type        = string
  default     = null
}

variable "data_dir" {
  description = "Local folder on the host that receives the training data."
  type        = string
  default     = "/data"
}

variable "sync_data_on_boot" {
  description = "Copy the data prefix of the bucket into data_dir when the host first boots."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
