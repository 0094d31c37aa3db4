# Instance sizes allowed per environment: dev runs small sizes only (nano, micro, small of
# the burstable families), staging nothing above 4xlarge, prod anything. Read from AWS
# resources' instance_type, instance_class and node_type, and from the sample stack's
# stand-ins (null_resource triggers holding the same names).
package instance_sizes

deny := violations(input)

size_attributes := ["instance_type", "instance_class", "node_type"]

small_families := {"t2", "t3", "t3a", "t4g"}

small_sizes := {"nano", "micro", "small"}

violations(doc) := dev_violations(doc) | staging_violations(doc)

dev_violations(doc) := {msg |
	doc.environment.name == "dev"
	some size in sizes(doc)
	not small(size.value)
	msg := concat("", [
		size.address, ": ", size.attribute, " ", size.value,
		" is not allowed in dev (small sizes only: t3/t4g nano, micro, small)",
	])
}

staging_violations(doc) := {msg |
	doc.environment.name == "staging"
	some size in sizes(doc)
	beyond_4xlarge(size.value)
	msg := concat("", [
		size.address, ": ", size.attribute, " ", size.value,
		" is larger than staging allows (at most 4xlarge)",
	])
}

sizes(doc) := {{"address": rc.address, "attribute": attr, "value": value} |
	some rc in doc.plan.resource_changes
	changing(rc)
	values := attributes(rc)
	some attr in size_attributes
	value := values[attr]
	is_string(value)
}

changing(rc) if "create" in rc.change.actions

changing(rc) if "update" in rc.change.actions

attributes(rc) := rc.change.after.triggers if {
	rc.type == "null_resource"
	is_object(rc.change.after.triggers)
}

attributes(rc) := rc.change.after if {
	rc.type != "null_resource"
	is_object(rc.change.after)
}

# "db.t3.micro" -> "t3" and "micro"; "t3.small" -> "t3" and "small".
family(value) := parts[count(parts) - 2] if {
	parts := split(value, ".")
	count(parts) >= 2
}

size_of(value) := parts[count(parts) - 1] if {
	parts := split(value, ".")
	count(parts) >= 2
}

small(value) if {
	family(value) in small_families
	size_of(value) in small_sizes
}

# 8xlarge and above, and bare metal.
beyond_4xlarge(value) if {
	matches := regex.find_all_string_submatch_n(`^(\d+)xlarge$`, size_of(value), 1)
	count(matches) == 1
	to_number(matches[0][1]) > 4
}

beyond_4xlarge(value) if startswith(size_of(value), "metal")
