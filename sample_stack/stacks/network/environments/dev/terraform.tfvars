environment        = "dev"
vpc_cidr           = "10.20.0.0/16"
availability_zones = ["eu-west-1a"]
