locals {
  az_count = length(var.availability_zones)
}

# aws_vpc
resource "null_resource" "vpc" {
  triggers = {
    name                 = "${var.name_prefix}-vpc"
    region               = var.aws_region
    cidr_block           = var.vpc_cidr
    enable_dns_hostnames = "true"
    enable_dns_support   = "true"
    tags                 = jsonencode(merge(var.tags, { Name = "${var.name_prefix}-vpc" }))
  }
}

# aws_internet_gateway
resource "null_resource" "internet_gateway" {
  triggers = {
    name   = "${var.name_prefix}-igw"
    vpc_id = null_resource.vpc.id
    tags   = jsonencode(merge(var.tags, { Name = "${var.name_prefix}-igw" }))
  }
}

# aws_subnet (public): the first /24-sized slices of the VPC
resource "null_resource" "public_subnet" {
  count = local.az_count

  triggers = {
    name                    = "${var.name_prefix}-public-${var.availability_zones[count.index]}"
    vpc_id                  = null_resource.vpc.id
    availability_zone       = var.availability_zones[count.index]
    cidr_block              = cidrsubnet(var.vpc_cidr, 8, count.index)
    map_public_ip_on_launch = "true"
    route_via               = null_resource.internet_gateway.id
    tags = jsonencode(merge(var.tags, {
      Name = "${var.name_prefix}-public-${var.availability_zones[count.index]}"
      Tier = "public"
    }))
  }
}

# aws_nat_gateway: one per AZ so losing a zone never cuts the others off
resource "null_resource" "nat_gateway" {
  count = local.az_count

  triggers = {
    name      = "${var.name_prefix}-nat-${var.availability_zones[count.index]}"
    subnet_id = null_resource.public_subnet[count.index].id
    tags      = jsonencode(merge(var.tags, { Name = "${var.name_prefix}-nat-${var.availability_zones[count.index]}" }))
  }
}

# aws_subnet (private): slices 10, 11, 12 of the VPC
resource "null_resource" "private_subnet" {
  count = local.az_count

  triggers = {
    name                    = "${var.name_prefix}-private-${var.availability_zones[count.index]}"
    vpc_id                  = null_resource.vpc.id
    availability_zone       = var.availability_zones[count.index]
    cidr_block              = cidrsubnet(var.vpc_cidr, 8, count.index + 10)
    map_public_ip_on_launch = "false"
    route_via               = null_resource.nat_gateway[count.index].id
    tags = jsonencode(merge(var.tags, {
      Name = "${var.name_prefix}-private-${var.availability_zones[count.index]}"
      Tier = "private"
    }))
  }
}
