-- Energy roll-ups, written by the store's writer in the transaction of the readings they come from
-- (lightctl/store/rollups.py), so that no report reads raw readings. One row per channel and local
-- hour, day or month; channel_id '' is a controller's metered energy that no channel's observed
-- state accounts for (a gap in observation, the cabinet's own consumption).
--
-- kwh = metered_kwh + estimated; metered_kwh is what a meter (or measured power) gave; peak_kwh and
-- valley_kwh are the shares in those tariff periods (flat = kwh - peak - valley); q0..q3 the hour's
-- quarter hours; covered_s how long the channel's state was known. Times: UTC ms of the local
-- start of the hour, day or month.

CREATE TABLE energy_hours (
    hour BIGINT NOT NULL,
    controller_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    kwh DOUBLE PRECISION NOT NULL,
    metered_kwh DOUBLE PRECISION NOT NULL,
    peak_kwh DOUBLE PRECISION NOT NULL,
    valley_kwh DOUBLE PRECISION NOT NULL,
    q0_kwh DOUBLE PRECISION NOT NULL,
    q1_kwh DOUBLE PRECISION NOT NULL,
    q2_kwh DOUBLE PRECISION NOT NULL,
    q3_kwh DOUBLE PRECISION NOT NULL,
    covered_s DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (hour, controller_id, channel_id)
) WITHOUT ROWID;

CREATE TABLE energy_days (
    day BIGINT NOT NULL,
    controller_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    kwh DOUBLE PRECISION NOT NULL,
    metered_kwh DOUBLE PRECISION NOT NULL,
    peak_kwh DOUBLE PRECISION NOT NULL,
    valley_kwh DOUBLE PRECISION NOT NULL,
    covered_s DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (day, controller_id, channel_id)
) WITHOUT ROWID;

CREATE TABLE energy_months (
    month BIGINT NOT NULL,
    controller_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    kwh DOUBLE PRECISION NOT NULL,
    metered_kwh DOUBLE PRECISION NOT NULL,
    peak_kwh DOUBLE PRECISION NOT NULL,
    valley_kwh DOUBLE PRECISION NOT NULL,
    covered_s DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (month, controller_id, channel_id)
) WITHOUT ROWID;

-- Each controller's last meter point rolled up: after a restart the next reading's step from it
-- is still energy (spread over the time between, as channel '').
CREATE TABLE meter_marks (
    controller_id TEXT NOT NULL PRIMARY KEY,
    at BIGINT NOT NULL,
    energy_kwh DOUBLE PRECISION,
    power_w DOUBLE PRECISION
);
