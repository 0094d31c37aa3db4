# The application layer (docs/stacks.md): it depends on the network stack and reads its
# outputs from the network's state of the same workspace. The portal passes that state
# file's path as TF_VAR_network_state_path and mounts its folder read-only in the sandbox.

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

# Read only once the network has a state there: until then the portal's path names no file,
# and the app servers say "not-deployed" (the network's deployment plans this stack again).
data "terraform_remote_state" "network" {
  count   = var.network_state_path != "" && fileexists(var.network_state_path) ? 1 : 0
  backend = "local"
  config = {
    path = var.network_state_path
  }
}

locals {
  network = try(data.terraform_remote_state.network[0].outputs, {})
  vpc_id  = lookup(local.network, "vpc_id", "not-deployed")
  subnets = lookup(local.network, "private_subnet_ids", [])
}

# aws_instance, one per app server, in the network's private subnets
resource "null_resource" "app_server" {
  count = var.app_instance_count

  triggers = {
    name        = "media-${var.environment}-app-${count.index}"
    vpc_id      = local.vpc_id
    subnet_id   = length(local.subnets) > 0 ? local.subnets[0] : "none"
    app_version = var.app_version
  }
}

output "vpc_id" {
  value = local.vpc_id
}

output "app_servers" {
  value = null_resource.app_server[*].id
}
