output "alerts_topic_id" {
  description = "Id of the SNS topic alarms notify."
  value       = null_resource.alerts_topic.id
}

output "cpu_alarm_ids" {
  description = "Ids of the per-server CPU alarms."
  value       = null_resource.app_cpu[*].id
}

output "alarm_count" {
  description = "Number of alarms (CPU per server + database + queue)."
  value       = length(null_resource.app_cpu) + 2
}
