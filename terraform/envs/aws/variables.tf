variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name prefix of every resource (lowercase letters, digits, hyphens)."
  type        = string
  default     = "dogbreed"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name must be 2-20 lowercase letters, digits and hyphens, starting with a letter (it goes into bucket names)."
  }
}

variable "model_data_url" {
  description = "S3 URI of the model.tar.gz the endpoint serves, e.g. s3://<bucket_name>/models/<run>/model.tar.gz. Upload it first (see README)."
  type        = string
}

variable "lambda_zip_path" {
  description = "Path of the inference Lambda zip; `make lambda-zip` writes dist/inference_lambda.zip."
  type        = string
  default     = "../../../dist/inference_lambda.zip"
}

variable "image_tag" {
  description = "Tag of the prebuilt PyTorch inference image (CPU tag for ml.m5/ml.c5, GPU tag for ml.g4dn/ml.g5)."
  type        = string
  default     = "2.6.0-cpu-py312"
}

variable "endpoint_instance_type" {
  description = "ML instance type of the endpoint."
  type        = string
  default     = "ml.m5.large"
}

variable "endpoint_min_capacity" {
  description = "Fewest endpoint instances autoscaling keeps."
  type        = number
  default     = 1
}

variable "endpoint_max_capacity" {
  description = "Most endpoint instances autoscaling adds."
  type        = number
  default     = 4
}

variable "target_invocations_per_instance" {
  description = "Invocations per instance per minute the scaling policy tracks."
  type        = number
  default     = 15
}

variable "enable_trainer_host" {
  description = "Create the GPU trainer host. Turn off when not training: it is billed by the hour."
  type        = bool
  default     = false
}

variable "trainer_instance_type" {
  description = "GPU instance type of the trainer host."
  type        = string
  default     = "g4dn.xlarge"
}

variable "trainer_package_s3_uri" {
  description = "S3 URI of the trainer wheel the host installs (upload the wheel of services/trainer below code/ of the bucket)."
  type        = string
  default     = null
}

variable "trainer_pip_spec" {
  description = "pip requirement of the trainer when trainer_package_s3_uri is null (needs enable_nat_gateway)."
  type        = string
  default     = null
}

variable "enable_nat_gateway" {
  description = "Give the private subnets internet egress through a NAT gateway (billed hourly): pip installs on the trainer host, and URL mode when lambda_in_vpc is true."
  type        = bool
  default     = false
}

variable "lambda_in_vpc" {
  description = "Attach the API's Lambda to the private subnets. Off by default: it needs only IAM-authenticated sagemaker:InvokeEndpoint, which works from outside the VPC, and URL mode ({\"url\": ...}) fetches images from the internet. Set true together with enable_nat_gateway = true if your policy requires VPC-attached Lambdas and you want URL mode; without NAT, URL mode cannot reach the internet (uploads still work)."
  type        = bool
  default     = false
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of the Lambda function."
  type        = number
  default     = 50
}

variable "provisioned_concurrency" {
  description = "Provisioned concurrent executions of the Lambda function; 0 turns it off."
  type        = number
  default     = 0
}

variable "allowed_origins" {
  description = "Origins allowed by CORS."
  type        = list(string)
  default     = []
}

variable "manage_api_gateway_account_role" {
  description = "Set the region's API Gateway CloudWatch role (turn off if the account already manages it elsewhere)."
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "ARNs (SNS topics) notified by the endpoint alarms."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
