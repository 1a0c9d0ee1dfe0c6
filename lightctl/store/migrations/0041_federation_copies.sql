-- City: which of its lighting-on inspections is a copy of which district's (the district's own id),
-- so that an inspection a district sends again is not counted twice. The city's energy roll-ups are
-- the districts' hours, upserted by (hour, controller, channel): a copy sent again replaces itself.
CREATE TABLE federation_inspection_copies (
    district TEXT NOT NULL,
    district_inspection_id BIGINT NOT NULL,
    inspection_id BIGINT NOT NULL REFERENCES lighting_inspections (id),
    PRIMARY KEY (district, district_inspection_id)
);
