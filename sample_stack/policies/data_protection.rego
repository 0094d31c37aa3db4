# No destroy or replace of a resource that holds data (a database, a bucket, a queue...)
# without an override. The environment's data-bearing types (the portal's table plus the
# environment's own entries) and addresses (stand-ins such as the sample stack's database)
# come in input.environment. The manifest makes it soft in prod: a DevOps Lead overrides.
package data_protection

deny := violations(input)

violations(doc) := {msg |
	some rc in doc.plan.resource_changes
	"delete" in rc.change.actions
	data_bearing(rc, doc.environment)
	verb := what(rc.change.actions)
	msg := concat("", [
		rc.address, " (", rc.type, ") would be ", verb,
		": it holds data the configuration cannot re-create",
	])
}

data_bearing(rc, env) if rc.type in {t | some t in env.data_resource_types}

data_bearing(rc, env) if rc.address in {a | some a in env.data_resource_addresses}

what(actions) := "replaced" if "create" in actions

what(actions) := "destroyed" if not "create" in actions
