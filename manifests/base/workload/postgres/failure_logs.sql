-- The failure_logs schema of the reference workload, applied once by the postgres image's
-- docker-entrypoint-initdb.d on an empty data directory. The failure agent runs the same
-- statements as idempotent migrations at start, so an existing volume is upgraded too.
CREATE ROLE failure_agent LOGIN;
CREATE DATABASE failures OWNER failure_agent;
\connect failures
SET ROLE failure_agent;
CREATE TABLE IF NOT EXISTS failure_logs (
    id          BIGSERIAL PRIMARY KEY,
    pipeline    TEXT        NOT NULL,
    job         TEXT        NOT NULL,
    status      TEXT        NOT NULL DEFAULT 'failed',
    reason      TEXT,
    log_excerpt TEXT,
    failed_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS failure_logs_pipeline_failed_at
    ON failure_logs (pipeline, failed_at DESC);
