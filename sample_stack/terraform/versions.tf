terraform {
  required_version = ">= 1.0.0"

  required_providers {
    null = {
      source  = "hashicorp/null"
      version = "= 2.1.2"
    }
  }

  # Deliberately empty: the portal completes it at init time with
  #   terraform init -backend-config=workspace_dir=/some/persistent/dir
  # so each workspace's state (one per environment) outlives the temporary
  # working directory a run is executed in.
  backend "local" {}
}
