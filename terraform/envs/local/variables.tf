variable "moto_endpoint" {
  description = "URL of the moto server every AWS call goes to, e.g. http://127.0.0.1:5000."
  type        = string

  validation {
    condition     = can(regex("^http://(127\\.0\\.0\\.1|localhost):[0-9]+$", var.moto_endpoint))
    error_message = "moto_endpoint must be http://127.0.0.1:<port> (or localhost): this environment only talks to a local emulator."
  }
}

variable "region" {
  description = "Region the emulated resources live in."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name prefix of every resource."
  type        = string
  default     = "dogbreed-local"
}

variable "lambda_zip_path" {
  description = "Path of the inference Lambda zip (any valid zip works: moto does not run it here)."
  type        = string
}

variable "model_data_url" {
  description = "S3 URI of the model artifact; null uses models/local/model.tar.gz in the environment's bucket."
  type        = string
  default     = null
}

variable "lambda_in_vpc" {
  description = "Attach the API's Lambda to the private subnets, as envs/aws's lambda_in_vpc (off by default there too)."
  type        = bool
  default     = false
}

variable "endpoint_mode" {
  description = "Endpoint mode, as envs/aws's endpoint_mode: \"instance\" or \"serverless\"."
  type        = string
  default     = "instance"
}
