# --- Alarms: ASG CPU, database connections, queue depth -> SNS ---
resource "aws_sns_topic" "alerts" {
  name = "${local.name}-alerts"
}

locals {
  alarms = {
    app-cpu-high = {
      namespace  = "AWS/EC2", metric = "CPUUtilization", statistic = "Average", threshold = var.alarm_cpu_threshold
      dimensions = { AutoScalingGroupName = aws_autoscaling_group.app.name }
    }
    db-connections-high = {
      namespace  = "AWS/RDS", metric = "DatabaseConnections", statistic = "Maximum", threshold = 100
      dimensions = { DBInstanceIdentifier = aws_db_instance.main.identifier }
    }
    queue-depth-high = {
      namespace  = "AWS/SQS", metric = "ApproximateNumberOfMessagesVisible", statistic = "Maximum", threshold = 1000
      dimensions = { QueueName = aws_sqs_queue.jobs.name }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "main" {
  for_each            = local.alarms
  alarm_name          = "${local.name}-${each.key}"
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  threshold           = each.value.threshold
  dimensions          = each.value.dimensions
  comparison_operator = "GreaterThanThreshold"
  period              = 300
  evaluation_periods  = 3
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}
