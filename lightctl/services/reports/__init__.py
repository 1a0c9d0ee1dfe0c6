"""The city's figures (issue 15): rates against the action plan's targets, lighting-on
inspections, energy from the roll-ups, the schedule's forecast; see
:mod:`lightctl.services.reports.service` for the whole."""
