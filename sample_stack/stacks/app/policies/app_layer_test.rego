package app_layer_test

import data.app_layer

creates(address, type, after) := {"plan": {"resource_changes": [{
	"address": address,
	"type": type,
	"change": {"actions": ["create"], "after": after},
}]}}

test_an_app_server_passes if {
	doc := creates("null_resource.app_server[0]", "null_resource", {"triggers": {
		"name": "media-dev-app-0",
		"vpc_id": "123",
		"subnet_id": "456",
		"app_version": "1.0.0",
	}})
	count(app_layer.violations(doc)) == 0
}

test_an_aws_subnet_is_denied if {
	msgs := app_layer.violations(creates("aws_subnet.extra", "aws_subnet", {"cidr_block": "10.0.9.0/24"}))
	msgs == {"aws_subnet.extra would create aws_subnet: the network layer owns it; change it on the network stack"}
}

test_a_stand_in_carving_address_space_is_denied if {
	doc := creates("null_resource.subnet", "null_resource", {"triggers": {"cidr_block": "10.0.9.0/24"}})
	some msg in app_layer.violations(doc)
	contains(msg, "null_resource.subnet would create a VPC or subnet (its cidr_block)")
}

test_an_aws_instance_passes if {
	doc := creates("aws_instance.app", "aws_instance", {"instance_type": "t3.small", "subnet_id": "subnet-1"})
	count(app_layer.violations(doc)) == 0
}

test_destroying_a_subnet_is_not_creating_one if {
	doc := {"plan": {"resource_changes": [{
		"address": "aws_subnet.old",
		"type": "aws_subnet",
		"change": {"actions": ["delete"], "after": null},
	}]}}
	count(app_layer.violations(doc)) == 0
}
