# aws_sns_topic every alarm notifies
resource "null_resource" "alerts_topic" {
  triggers = {
    name = "${var.name_prefix}-alerts"
    tags = jsonencode(merge(var.tags, { Name = "${var.name_prefix}-alerts" }))
  }
}

# aws_cloudwatch_metric_alarm, one per app server
resource "null_resource" "app_cpu" {
  count = var.app_instance_count

  triggers = {
    name                = "${var.name_prefix}-app-${count.index + 1}-cpu-high"
    namespace           = "AWS/EC2"
    metric_name         = "CPUUtilization"
    statistic           = "Average"
    comparison_operator = "GreaterThanThreshold"
    threshold           = tostring(var.cpu_threshold)
    period              = "300"
    evaluation_periods  = "3"
    dimensions          = jsonencode({ InstanceId = var.app_instance_ids[count.index] })
    alarm_actions       = null_resource.alerts_topic.id
    tags                = jsonencode(merge(var.tags, { Name = "${var.name_prefix}-app-${count.index + 1}-cpu-high" }))
  }
}

resource "null_resource" "db_connections" {
  triggers = {
    name                = "${var.name_prefix}-db-connections-high"
    namespace           = "AWS/RDS"
    metric_name         = "DatabaseConnections"
    statistic           = "Maximum"
    comparison_operator = "GreaterThanThreshold"
    threshold           = tostring(var.db_connections_threshold)
    period              = "300"
    evaluation_periods  = "2"
    dimensions          = jsonencode({ DBInstanceIdentifier = var.db_identifier })
    alarm_actions       = null_resource.alerts_topic.id
    tags                = jsonencode(merge(var.tags, { Name = "${var.name_prefix}-db-connections-high" }))
  }
}

resource "null_resource" "queue_depth" {
  triggers = {
    name                = "${var.name_prefix}-queue-depth-high"
    namespace           = "AWS/SQS"
    metric_name         = "ApproximateNumberOfMessagesVisible"
    statistic           = "Maximum"
    comparison_operator = "GreaterThanThreshold"
    threshold           = tostring(var.queue_depth_threshold)
    period              = "300"
    evaluation_periods  = "3"
    dimensions          = jsonencode({ QueueName = var.queue_name })
    alarm_actions       = null_resource.alerts_topic.id
    tags                = jsonencode(merge(var.tags, { Name = "${var.name_prefix}-queue-depth-high" }))
  }
}
