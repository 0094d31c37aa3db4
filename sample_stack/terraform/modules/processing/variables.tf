variable "name_prefix" {
  description = "Prefix of every resource name, e.g. media-platform-dev."
  type        = string
}

variable "aws_region" {
  description = "AWS region of the queue and function."
  type        = string
}

variable "visibility_timeout" {
  description = "Visibility timeout of the queue in seconds."
  type        = number
}

variable "function_memory_mb" {
  description = "Memory of the processing function in MB."
  type        = number
}

variable "media_bucket_name" {
  description = "Bucket the function reads uploads from and writes renditions to."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the function runs in."
  type        = list(string)
}

variable "max_receive_count" {
  description = "Deliveries before a message is moved to the dead-letter queue."
  type        = number
  default     = 5
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
