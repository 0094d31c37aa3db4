variable "name_prefix" {
  description = "Prefix of every resource name, e.g. media-platform-dev."
  type        = string
}

variable "aws_region" {
  description = "AWS region of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the DB subnet group."
  type        = list(string)
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "multi_az" {
  description = "Whether a synchronous standby runs in a second AZ."
  type        = bool
}

variable "allocated_storage" {
  description = "Allocated storage in GiB."
  type        = number
}

variable "backup_retention_days" {
  description = "Days automated backups are kept."
  type        = number
  default     = 7
}

variable "engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "15"
}

variable "db_name" {
  description = "Name of the application database."
  type        = string
  default     = "media"
}

variable "username" {
  description = "Master user name."
  type        = string
  default     = "media_app"
}

variable "password" {
  description = "Master password."
  type        = string
  sensitive   = true
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
