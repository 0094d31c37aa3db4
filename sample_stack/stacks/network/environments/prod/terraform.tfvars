environment        = "prod"
vpc_cidr           = "10.22.0.0/16"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
