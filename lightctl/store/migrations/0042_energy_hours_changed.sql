-- District: the local hours (UTC ms of their start) whose energy rows changed since the district
-- last sent them to the city (lightctl/federation/rollups.py). The roll-ups note each hour they
-- write, in the transaction that writes it, only in a district daemon (federation.role: district),
-- raising the note's version each time; the district removes a note, at the version it read, in
-- the transaction that puts the hour's rows in its outbox (a note raised meanwhile stays: the hour
-- goes again). A meter step spread back over a gap of hours changes old hours: they go again too.
CREATE TABLE energy_hours_changed (
    hour BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
