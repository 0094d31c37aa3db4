variable "name_prefix" {
  description = "Prefix of every resource name, e.g. media-platform-dev."
  type        = string
}

variable "aws_region" {
  description = "AWS region of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the cache subnet group."
  type        = list(string)
}

variable "node_type" {
  description = "ElastiCache node type."
  type        = string
}

variable "num_nodes" {
  description = "Number of Redis nodes; more than one enables automatic failover."
  type        = number
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
