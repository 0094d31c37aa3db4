variable "name_prefix" {
  description = "Prefix of every resource name, e.g. media-platform-dev."
  type        = string
}

variable "aws_region" {
  description = "AWS region of the VPC."
  type        = string
}

variable "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC."
  type        = string
}

variable "availability_zones" {
  description = "One public and one private subnet is created in each of these zones."
  type        = list(string)
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
