# The application layer runs on the network the network stack owns: its plans may not
# create the network's resources (VPCs, subnets, gateways, route tables and the like).
# Such a change is filed on the network stack, with its own tickets and approvals.
#
# The application stack's own policy (Stack.policy_dir = stacks/app/policies), evaluated
# on its plans on top of the environment's policy folder (docs/stacks.md).
#
# Checked: AWS resource types, and the sample stack's stand-ins (a null_resource whose
# triggers carve address space, a cidr_block, stands for a VPC or a subnet).
package app_layer

network_types := {
	"aws_vpc",
	"aws_subnet",
	"aws_internet_gateway",
	"aws_egress_only_internet_gateway",
	"aws_nat_gateway",
	"aws_eip",
	"aws_route_table",
	"aws_route_table_association",
	"aws_route",
	"aws_network_acl",
	"aws_vpc_peering_connection",
	"aws_vpn_gateway",
	"aws_ec2_transit_gateway",
	"aws_ec2_transit_gateway_vpc_attachment",
}

deny := violations(input)

violations(doc) := {msg |
	some rc in doc.plan.resource_changes
	"create" in rc.change.actions
	what := network_resource(rc)
	msg := concat("", [
		rc.address, " would create ", what,
		": the network layer owns it; change it on the network stack",
	])
}

network_resource(rc) := rc.type if rc.type in network_types

network_resource(rc) := "a VPC or subnet (its cidr_block)" if {
	rc.type == "null_resource"
	is_string(rc.change.after.triggers.cidr_block)
}
