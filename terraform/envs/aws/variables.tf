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
  description = "S3 URI of the model.tar.gz the endpoint serves, e.g. s3://<bucket_name>/models/<run>/model.tar.gz. null (the default) creates no endpoint and no API yet: set it once a model exists."
  type        = string
  default     = null
}

variable "lambda_zip_path" {
  description = "Path of the inference Lambda zip (`make lambda-zip` writes dist/inference_lambda.zip); read only when model_data_url is set."
  type        = string
  default     = "../../../dist/inference_lambda.zip"
}

variable "endpoint_mode" {
  description = "\"instance\": a real-time endpoint on ML instances with autoscaling (billed per instance-hour). \"serverless\": SageMaker Serverless Inference, billed per request and scaling to zero, with cold starts, CPU only and a 4 MB request limit."
  type        = string
  default     = "instance"

  validation {
    condition     = contains(["instance", "serverless"], var.endpoint_mode)
    error_message = "endpoint_mode must be \"instance\" or \"serverless\"."
  }
}

variable "image_tag" {
  description = "Tag of the prebuilt PyTorch inference image (CPU tag for ml.m5/ml.c5 and serverless, GPU tag for ml.g4dn/ml.g5)."
  type        = string
  default     = "2.6.0-cpu-py312"
}

variable "image_uri" {
  description = "Full inference image URI; overrides image_tag for regions the provider has no prebuilt-image registry for (e.g. mx-central-1) or for your own image."
  type        = string
  default     = null
}

variable "endpoint_instance_type" {
  description = "ML instance type of the endpoint (endpoint_mode = \"instance\")."
  type        = string
  default     = "ml.m5.large"
}

variable "endpoint_instance_storage" {
  description = "Whether endpoint_instance_type has instance-store (NVMe) volumes, which SageMaker refuses a volume KMS key for; null looks it up in the EC2 instance type catalogue (set it for a type EC2 does not offer in the region)."
  type        = bool
  default     = null
}

variable "endpoint_initial_instance_count" {
  description = "Instances a new endpoint configuration starts with; null uses endpoint_min_capacity. Each model roll-out provisions this many new instances, so before rolling out under load set it to the current count (see the README)."
  type        = number
  default     = null
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
  description = "Invocations per instance per minute the scaling policy tracks; the default comes from the serving benchmark (see the endpoint module README)."
  type        = number
  default     = 1500
}

variable "serverless_memory_size_mb" {
  description = "Memory of the serverless endpoint in MB (1024-6144 in steps of 1024; vCPUs scale with it)."
  type        = number
  default     = 3072
}

variable "serverless_max_concurrency" {
  description = "Most concurrent invocations of the serverless endpoint (1-200; counts against the account's serverless concurrency quota)."
  type        = number
  default     = 10
}

variable "serverless_provisioned_concurrency" {
  description = "Provisioned (always warm, billed hourly) concurrency of the serverless endpoint; null for none."
  type        = number
  default     = null
}

variable "enable_trainer_host" {
  description = "Create the GPU trainer host with its role and SSM interface endpoints. Turn off when not training: it is billed by the hour."
  type        = bool
  default     = false
}

variable "trainer_instance_type" {
  description = "GPU instance type of the trainer host."
  type        = string
  default     = "g4dn.xlarge"
}

variable "trainer_ami_type" {
  description = "Deep Learning AMI type whose latest id AWS publishes as the public SSM parameter /aws/service/deeplearning/ami/x86_64/<type>/latest/ami-id; used when trainer_ami_id is null."
  type        = string
  default     = "oss-nvidia-driver-gpu-pytorch-2.10-ubuntu-24.04"
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
  description = "Attach the API's Lambda to the private subnets (with its own security group). Off by default: it needs only IAM-authenticated sagemaker:InvokeEndpoint and DescribeEndpoint, and URL mode fetches from the internet, which needs enable_nat_gateway = true inside the VPC."
  type        = bool
  default     = false
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of the Lambda function; null (the default) reserves none, which new accounts with a concurrency limit of 10 need."
  type        = number
  default     = null
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

variable "api_authorization" {
  description = "How callers authenticate: \"api_key\" (x-api-key only), \"iam\" (SigV4-signed requests, plus the key) or \"cognito\" (a Cognito user pool JWT, plus the key). The API key always stays for metering."
  type        = string
  default     = "api_key"
}

variable "cognito_user_pool_arns" {
  description = "Cognito user pools whose tokens the API accepts (api_authorization = \"cognito\")."
  type        = list(string)
  default     = []
}

variable "enable_waf" {
  description = "Put a WAFv2 web ACL in front of the stage: AWS managed common and known-bad-inputs rules plus a per-IP rate limit (billed monthly plus per request)."
  type        = bool
  default     = false
}

variable "manage_api_gateway_account_role" {
  description = "Set the region's API Gateway CloudWatch role. Off by default: it is one setting for every API in the region, and destroying it leaves the account pointing at a deleted role. Turn on only in an account where nothing else sets it."
  type        = bool
  default     = false
}

variable "alarm_actions" {
  description = "ARNs (SNS topics) notified by the endpoint alarms; empty creates a topic of the stack's own (subscribe alarm_emails to it)."
  type        = list(string)
  default     = []
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the stack's alarm topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
