# The network layer of the Media Platform as a stack of its own (docs/stacks.md): the VPC
# and subnets, from the shared module the single-root stack in ../../terraform uses too.

variable "environment" {
  type = string
}

variable "aws_region" {
  type    = string
  default = "eu-west-1"
}

variable "vpc_cidr" {
  type = string
}

variable "availability_zones" {
  type = list(string)
}

module "network" {
  source = "../../terraform/modules/network"

  name_prefix        = "media-${var.environment}"
  aws_region         = var.aws_region
  vpc_cidr           = var.vpc_cidr
  availability_zones = var.availability_zones
  # The cost-tracking tags every resource carries (sample_stack/policies/tags.rego).
  tags = {
    Project     = "media"
    Environment = var.environment
    Owner       = "platform-team"
    CostCenter  = "media-${var.environment}"
    Layer       = "network"
  }
}

output "vpc_id" {
  value = module.network.vpc_id
}

output "private_subnet_ids" {
  value = module.network.private_subnet_ids
}

output "vpc_cidr" {
  value = var.vpc_cidr
}
