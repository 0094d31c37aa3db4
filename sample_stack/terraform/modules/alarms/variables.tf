variable "name_prefix" {
  description = "Prefix of every resource name, e.g. media-platform-dev."
  type        = string
}

variable "app_instance_count" {
  description = "Number of app servers (known at plan time, unlike their ids)."
  type        = number
}

variable "app_instance_ids" {
  description = "Ids of the app servers, one CPU alarm each."
  type        = list(string)
}

variable "cpu_threshold" {
  description = "CPU utilisation percent above which an app server alarm fires."
  type        = number
}

variable "db_identifier" {
  description = "RDS identifier of the database instance."
  type        = string
}

variable "db_connections_threshold" {
  description = "Database connections above which the alarm fires."
  type        = number
  default     = 100
}

variable "queue_name" {
  description = "Name of the processing queue."
  type        = string
}

variable "queue_depth_threshold" {
  description = "Visible messages above which the queue depth alarm fires."
  type        = number
  default     = 1000
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
