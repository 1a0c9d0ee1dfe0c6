"""Schedules: calendars, astronomical events, entries and priorities.

``schedules.builder.build(config, inventory)`` gives the core a pure ``ScheduleSource``;
``schedules.runner`` fires "reconcile now" at its transitions.
"""
