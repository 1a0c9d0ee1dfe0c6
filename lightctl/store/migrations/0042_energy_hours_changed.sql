-- District: the local hours (UTC ms of their start) whose energy rows changed since the district
-- last sent them to the city (lightctl/federation/rollups.py). The roll-ups note each hour they
-- write, in the transaction that writes it, only in a district daemon (federation.role: district);
-- the district takes them out in the transaction that puts their rows in its outbox. A meter step
-- spread back over a gap of hours changes old hours: they are sent again too.
CREATE TABLE energy_hours_changed (
    hour BIGINT PRIMARY KEY
);
