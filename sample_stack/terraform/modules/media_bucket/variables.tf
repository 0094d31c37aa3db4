variable "name_prefix" {
  description = "Prefix of every resource name, e.g. media-platform-dev."
  type        = string
}

variable "aws_region" {
  description = "AWS region of the bucket."
  type        = string
}

variable "versioning_enabled" {
  description = "Whether object versioning is enabled."
  type        = bool
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
