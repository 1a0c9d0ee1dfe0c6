-- Federation (1 + N, lightctl/federation): a district daemon keeps what it has for the city until
-- the city has it, and carries out each of the city's commands once; the city keeps what every
-- district sent, once each and in the district's order, and the commands it holds for districts
-- that were offline. A daemon uses the tables of its role and leaves the others empty.

-- District: every event for the city, in the order it happened (id), until the city acknowledges
-- it (the mark 'acknowledged'); acknowledged rows are pruned after a while.
CREATE TABLE federation_outbox (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    controller_id TEXT,
    body TEXT NOT NULL
);

-- Progress marks: 'acknowledged' (district: the last outbox id the city confirmed) and
-- 'received/<district>' (city: the last id of that district's outbox recorded here).
CREATE TABLE federation_marks (
    name TEXT NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL,
    at BIGINT NOT NULL
);

-- District: the city's commands taken here, by the city's request id: one seen again is answered
-- from here, never carried out twice. layer_ids: the overrides or curtailments it set here.
CREATE TABLE federation_inbox (
    request_id TEXT NOT NULL PRIMARY KEY,
    received_at BIGINT NOT NULL,
    action TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    finished_at BIGINT,
    layer_ids TEXT
);

-- City: what each district sent, once each, in the district's order (its outbox id).
CREATE TABLE federation_events (
    district TEXT NOT NULL,
    id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    controller_id TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (district, id)
);
CREATE INDEX federation_events_kind ON federation_events (kind, at);

-- City: every request it sent to the districts, for its command (and the layer it set here).
CREATE TABLE federation_requests (
    request_id TEXT NOT NULL PRIMARY KEY,
    command_id BIGINT NOT NULL,
    layer_id BIGINT,
    action TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX federation_requests_layer ON federation_requests (layer_id);

-- City: a request for a district that was offline when it was given, sent when it is born again.
CREATE TABLE federation_deliveries (
    request_id TEXT NOT NULL REFERENCES federation_requests (request_id),
    district TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    answered_at BIGINT,
    PRIMARY KEY (request_id, district)
);
