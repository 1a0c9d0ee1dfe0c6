"""Domain services over what the engine observed and the store recorded: metrics and reports,
faults and work orders, users and sessions."""
