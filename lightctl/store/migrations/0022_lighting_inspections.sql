-- Lighting-on inspections (亮灯率): taken by the daemon at set instants of each night
-- (lightctl/runtime/reports.py), one row per site and lighting class (arterial road, other road,
-- landscape), so that a month's lighting-on rate is a sum over rows. Region and district are
-- those of the site when the inspection was taken.
--
-- should_be_lit: luminaires on channels the schedule had on; lit: of those, lit as reported
-- (lamp faults and tripped circuits taken off); not_reported: on channels whose controller gave no
-- fresh state (they count in neither); luminaires / faulty: every remotely controlled luminaire
-- of the class, and those out of service at that instant (the facility condition rate);
-- controllers / online: the site's controllers and those online.

CREATE TABLE lighting_inspections (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    instant TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX lighting_inspections_at ON lighting_inspections (at);

CREATE TABLE lighting_inspection_rows (
    inspection_id BIGINT NOT NULL REFERENCES lighting_inspections (id),
    site_id TEXT NOT NULL,
    district_id TEXT NOT NULL,
    region TEXT NOT NULL,
    lighting_class TEXT NOT NULL,
    luminaires INTEGER NOT NULL,
    should_be_lit INTEGER NOT NULL,
    lit DOUBLE PRECISION NOT NULL,
    not_reported INTEGER NOT NULL,
    faulty DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (inspection_id, site_id, lighting_class)
);

CREATE TABLE lighting_inspection_sites (
    inspection_id BIGINT NOT NULL REFERENCES lighting_inspections (id),
    site_id TEXT NOT NULL,
    district_id TEXT NOT NULL,
    region TEXT NOT NULL,
    controllers INTEGER NOT NULL,
    online INTEGER NOT NULL,
    PRIMARY KEY (inspection_id, site_id)
);
