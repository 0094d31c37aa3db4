terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # Partial configuration: bucket, key, region, dynamodb_table and encrypt are
  # supplied at init time, e.g.
  #   terraform init -backend-config=bucket=acme-tfstate -backend-config=key=media-platform.tfstate \
  #     -backend-config=region=eu-west-1 -backend-config=dynamodb_table=tf-locks -backend-config=encrypt=true
  # Each environment is a workspace, stored under env:/<workspace>/<key>.
  backend "s3" {}
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "change-control-portal"
    })
  }
}
