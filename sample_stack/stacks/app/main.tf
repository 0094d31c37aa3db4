# The application layer (docs/stacks.md): it depends on the network stack and reads its
# outputs from the network's state of the same workspace. The portal passes that state
# file's path as TF_VAR_network_state_path and mounts it read-only in the sandbox; until
# the network is deployed there the defaults below are read.

variable "environment" {
  type = string
}

variable "app_instance_count" {
  type    = number
  default = 1
}

variable "app_version" {
  type    = string
  default = "1.0.0"
}

variable "network_state_path" {
  type        = string
  default     = ""
  description = "The network stack's state file (set by the portal)."
}

data "terraform_remote_state" "network" {
  backend = "local"
  config = {
    path = var.network_state_path != "" ? var.network_state_path : "${path.root}/network.tfstate"
  }
  defaults = {
    vpc_id             = "not-deployed"
    private_subnet_ids = []
    vpc_cidr           = ""
  }
}

# aws_instance, one per app server, in the network's private subnets
resource "null_resource" "app_server" {
  count = var.app_instance_count

  triggers = {
    name        = "media-${var.environment}-app-${count.index}"
    vpc_id      = data.terraform_remote_state.network.outputs.vpc_id
    subnet_id   = try(data.terraform_remote_state.network.outputs.private_subnet_ids[0], "none")
    app_version = var.app_version
  }
}

output "vpc_id" {
  value = data.terraform_remote_state.network.outputs.vpc_id
}

output "app_servers" {
  value = null_resource.app_server[*].id
}
