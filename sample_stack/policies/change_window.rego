# Changes outside the environment's window are for emergencies only. Advisory: the portal
# enforces the window itself when the apply starts; this tells approvers early. The days
# are ISO weekdays (1 Monday .. 7 Sunday); times are the environment's local time.
package change_window

deny := violations(input)

weekdays := {"monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6, "sunday": 7}

violations(doc) := {msg |
	count(doc.environment.window.days) > 0
	not inside(doc)
	not doc.ticket.emergency
	msg := concat("", [
		"planned at ", doc.time.local, " (", doc.time.zone, "), outside the ",
		doc.environment.name, " window: only emergencies change outside it",
	])
}

minutes(text) := (to_number(parts[0]) * 60) + to_number(parts[1]) if {
	parts := split(text, ":")
}

inside(doc) if {
	weekdays[doc.time.weekday] in {d | some d in doc.environment.window.days}
	now := (doc.time.hour * 60) + doc.time.minute
	now >= minutes(doc.environment.window.start)
	now < minutes(doc.environment.window.end)
}

inside(doc) if {
	weekdays[doc.time.weekday] in {d | some d in doc.environment.window.days}
	not doc.environment.window.start
}
