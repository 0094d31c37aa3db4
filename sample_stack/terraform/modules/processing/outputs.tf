output "queue_id" {
  description = "Id of the processing queue."
  value       = null_resource.queue.id
}

output "queue_name" {
  description = "Name of the processing queue."
  value       = local.queue_name
}

output "dead_letter_queue_name" {
  description = "Name of the dead-letter queue."
  value       = local.dlq_name
}

output "function_id" {
  description = "Id of the processing function."
  value       = null_resource.function.id
}

output "function_name" {
  description = "Name of the processing function."
  value       = local.function_name
}

output "function_timeout" {
  description = "Timeout of the processing function in seconds."
  value       = local.function_timeout
}
