# Every resource the plan creates or updates that carries tags carries the cost-tracking
# tags the process requires: project, environment, owner and cost-center. Keys compare
# case-insensitively, without "-" and "_" (Project, cost_center, CostCenter all count).
#
# Checked: AWS resources whose planned values have a "tags" attribute (tags and tags_all,
# so the provider's default_tags count), and the sample stack's stand-ins (null_resource
# whose triggers hold their tags as JSON). Resources that cannot carry tags are not checked.
#
# Written as a function of the input document (violations(doc)), so tests call it with
# their own documents (rego-cpp 1.5.2 crashes on `with input as` over function calls).
package tags

required := {"project", "environment", "owner", "costcenter"}

deny := violations(input)

violations(doc) := {msg |
	some rc in doc.plan.resource_changes
	changing(rc)
	carried := tags_of(rc)
	present := {normalized(k) | some k in object.keys(carried)}
	missing := required - present
	count(missing) > 0
	msg := concat("", [
		rc.address, " lacks the tags ", concat(", ", sort(missing)),
		": every resource carries project, environment, owner and cost-center",
	])
}

changing(rc) if "create" in rc.change.actions

changing(rc) if "update" in rc.change.actions

as_object(value) := value if is_object(value)

as_object(value) := {} if not is_object(value)

tags_of(rc) := object.union(as_object(after.tags), as_object(object.get(after, "tags_all", {}))) if {
	after := rc.change.after
	startswith(rc.type, "aws_")
	"tags" in object.keys(after)
}

tags_of(rc) := json.unmarshal(rc.change.after.triggers.tags) if {
	rc.type == "null_resource"
	is_string(rc.change.after.triggers.tags)
	json.is_valid(rc.change.after.triggers.tags)
}

normalized(key) := lower(replace(replace(key, "-", ""), "_", ""))
