variable "name_prefix" {
  description = "Prefix of every resource name, e.g. media-platform-dev."
  type        = string
}

variable "aws_region" {
  description = "AWS region of the servers."
  type        = string
}

variable "vpc_id" {
  description = "Id of the VPC."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets the internet-facing load balancer is placed in."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets the app servers are spread over (round robin)."
  type        = list(string)
}

variable "instance_type" {
  description = "EC2 instance type of the app servers."
  type        = string
}

variable "instance_count" {
  description = "Number of app servers."
  type        = number
}

variable "app_port" {
  description = "Port the application listens on."
  type        = number
  default     = 8000
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
