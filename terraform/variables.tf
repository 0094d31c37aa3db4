variable "environment" {
  type = string
  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "The environment must be one of: dev, staging, prod."
  }
}

variable "project" {
  type    = string
  default = "media-platform"
}

variable "aws_region" {
  type    = string
  default = "eu-west-1"
}

# Per-environment sizing, set in environments/<env>/terraform.tfvars.
variable "vpc_cidr" { type = string }
variable "availability_zones" { type = list(string) }
variable "app_instance_type" { type = string }
variable "app_instance_count" { type = number }
variable "db_instance_class" { type = string }
variable "db_multi_az" { type = bool }
variable "db_allocated_storage" { type = number }
variable "cache_node_type" { type = string }
variable "cache_num_nodes" { type = number }
variable "media_bucket_versioning" { type = bool }
variable "queue_visibility_timeout" { type = number }
variable "function_memory_mb" { type = number }
variable "alarm_cpu_threshold" { type = number }

variable "function_s3_bucket" {
  description = "Bucket holding the media processor's deployment package."
  type        = string
  default     = "media-platform-artifacts"
}

variable "function_s3_key" {
  type    = string
  default = "media-processor/latest.zip"
}

variable "tags" {
  type    = map(string)
  default = {}
}
