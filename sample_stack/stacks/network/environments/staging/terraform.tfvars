environment        = "staging"
vpc_cidr           = "10.21.0.0/16"
availability_zones = ["eu-west-1a", "eu-west-1b"]
