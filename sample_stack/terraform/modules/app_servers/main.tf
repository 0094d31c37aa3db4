# aws_instance, spread round robin over the private subnets
resource "null_resource" "instance" {
  count = var.instance_count

  triggers = {
    name          = "${var.name_prefix}-app-${count.index + 1}"
    instance_type = var.instance_type
    subnet_id     = element(var.private_subnet_ids, count.index)
    vpc_id        = var.vpc_id
    ami           = "media-platform-app-al2023"
    monitoring    = "true"
    tags = jsonencode(merge(var.tags, {
      Name = "${var.name_prefix}-app-${count.index + 1}"
      Role = "app"
    }))
  }
}

# aws_lb
resource "null_resource" "load_balancer" {
  triggers = {
    name               = "${var.name_prefix}-alb"
    load_balancer_type = "application"
    internal           = "false"
    subnets            = join(",", var.public_subnet_ids)
    tags               = jsonencode(merge(var.tags, { Name = "${var.name_prefix}-alb" }))
  }
}

# aws_lb_target_group + aws_lb_listener
resource "null_resource" "listener" {
  triggers = {
    name              = "${var.name_prefix}-https"
    load_balancer_arn = null_resource.load_balancer.id
    port              = "443"
    protocol          = "HTTPS"
    target_port       = tostring(var.app_port)
    health_check_path = "/healthz"
    tags              = jsonencode(merge(var.tags, { Name = "${var.name_prefix}-https" }))
  }
}

# aws_lb_target_group_attachment
resource "null_resource" "target_attachment" {
  count = var.instance_count

  triggers = {
    name        = "${var.name_prefix}-app-${count.index + 1}-attachment"
    listener_id = null_resource.listener.id
    target_id   = null_resource.instance[count.index].id
    port        = tostring(var.app_port)
    tags        = jsonencode(merge(var.tags, { Name = "${var.name_prefix}-app-${count.index + 1}-attachment" }))
  }
}
