variable "environment" {
  description = "Deployment environment; also the Terraform workspace the portal selects."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "The environment must be one of: dev, staging, prod."
  }
}

variable "project" {
  description = "Project name, used as the prefix of every resource name."
  type        = string
  default     = "media-platform"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.project))
    error_message = "The project must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "aws_region" {
  description = "AWS region the real stack lives in (recorded on the modelled resources)."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "The aws_region must look like an AWS region name, e.g. eu-west-1."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC, between /16 and /20 so each subnet can get a /24-ish slice."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && can(regex("/(1[6-9]|20)$", var.vpc_cidr))
    error_message = "The vpc_cidr must be an IPv4 CIDR block with a prefix length between /16 and /20."
  }
}

variable "availability_zones" {
  description = "Availability zones to spread subnets (and NAT gateways) over: one for dev, several for HA."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 1 && length(var.availability_zones) <= 3 && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "Give between 1 and 3 distinct availability zones."
  }

  validation {
    condition     = alltrue([for az in var.availability_zones : can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$", az))])
    error_message = "Each availability zone must look like eu-west-1a."
  }
}

variable "app_instance_type" {
  description = "EC2 instance type of the application servers."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.app_instance_type))
    error_message = "The app_instance_type must look like an EC2 instance type, e.g. t3.small."
  }
}

variable "app_instance_count" {
  description = "Number of application servers behind the load balancer."
  type        = number

  validation {
    condition     = var.app_instance_count >= 1 && var.app_instance_count <= 10 && floor(var.app_instance_count) == var.app_instance_count
    error_message = "The app_instance_count must be a whole number between 1 and 10."
  }
}

variable "db_instance_class" {
  description = "RDS instance class of the PostgreSQL database."
  type        = string

  validation {
    condition     = can(regex("^db\\.[a-z0-9-]+\\.[a-z0-9]+$", var.db_instance_class))
    error_message = "The db_instance_class must look like an RDS class, e.g. db.t3.micro."
  }
}

variable "db_multi_az" {
  description = "Whether the database runs with a synchronous standby in a second AZ."
  type        = bool
  default     = false
}

variable "db_allocated_storage" {
  description = "Allocated database storage in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage >= 20 && var.db_allocated_storage <= 16384 && floor(var.db_allocated_storage) == var.db_allocated_storage
    error_message = "The db_allocated_storage must be a whole number of GiB between 20 and 16384."
  }
}

# Deliberately no validation block: when a validation rule fails, Terraform
# 1.11 prints the variable's value in the error even though it is sensitive.
variable "db_password" {
  description = "Master password of the database. Sensitive: Terraform must never print it."
  type        = string
  sensitive   = true
}

variable "cache_node_type" {
  description = "ElastiCache node type of the Redis cache."
  type        = string

  validation {
    condition     = can(regex("^cache\\.[a-z0-9-]+\\.[a-z0-9]+$", var.cache_node_type))
    error_message = "The cache_node_type must look like an ElastiCache node type, e.g. cache.t3.micro."
  }
}

variable "cache_num_nodes" {
  description = "Number of Redis nodes (1 = no replica, more = automatic failover)."
  type        = number
  default     = 1

  validation {
    condition     = var.cache_num_nodes >= 1 && var.cache_num_nodes <= 6 && floor(var.cache_num_nodes) == var.cache_num_nodes
    error_message = "The cache_num_nodes must be a whole number between 1 and 6."
  }
}

variable "media_bucket_versioning" {
  description = "Whether object versioning is enabled on the media bucket."
  type        = bool
  default     = false
}

variable "queue_visibility_timeout" {
  description = "Visibility timeout of the processing queue, in seconds (the function timeout is derived from it)."
  type        = number
  default     = 60

  validation {
    condition     = var.queue_visibility_timeout >= 30 && var.queue_visibility_timeout <= 43200 && floor(var.queue_visibility_timeout) == var.queue_visibility_timeout
    error_message = "The queue_visibility_timeout must be a whole number of seconds between 30 and 43200."
  }
}

variable "function_memory_mb" {
  description = "Memory of the media processing function, in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.function_memory_mb >= 128 && var.function_memory_mb <= 10240 && floor(var.function_memory_mb) == var.function_memory_mb
    error_message = "The function_memory_mb must be a whole number between 128 and 10240."
  }
}

variable "alarm_cpu_threshold" {
  description = "CPU utilisation (percent) above which an app server's alarm fires."
  type        = number
  default     = 80

  validation {
    condition     = var.alarm_cpu_threshold > 0 && var.alarm_cpu_threshold <= 100
    error_message = "The alarm_cpu_threshold must be a percentage above 0 and at most 100."
  }
}

variable "tags" {
  description = "Extra tags merged into the standard ones (Project, Environment, ManagedBy) on every resource."
  type        = map(string)
  default     = {}
}
