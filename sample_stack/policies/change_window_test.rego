package change_window_test

import data.change_window

doc(weekday, hour, emergency) := {
	"environment": {"name": "prod", "window": {"days": [2, 4], "start": "10:00:00", "end": "14:00:00"}},
	"ticket": {"emergency": emergency},
	"time": {"weekday": weekday, "hour": hour, "minute": 30, "local": "then", "zone": "America/New_York"},
}

test_inside_the_window_passes if {
	count(change_window.violations(doc("tuesday", 11, false))) == 0
}

test_outside_the_window_is_flagged if {
	msgs := change_window.violations(doc("tuesday", 16, false))
	msgs == {"planned at then (America/New_York), outside the prod window: only emergencies change outside it"}
	count(change_window.violations(doc("monday", 11, false))) == 1
}

test_emergencies_pass_outside_the_window if {
	count(change_window.violations(doc("saturday", 3, true))) == 0
}

test_no_window_no_finding if {
	d := object.union(doc("saturday", 3, false), {"environment": {"name": "dev", "window": {"days": []}}})
	count(change_window.violations(d)) == 0
}
