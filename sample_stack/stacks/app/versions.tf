terraform {
  required_version = ">= 1.0.0"

  required_providers {
    null = {
      source  = "hashicorp/null"
      version = "= 2.1.2"
    }
  }

  # Completed by the portal: -backend-config=workspace_dir=<this stack's state folder>.
  backend "local" {}
}
