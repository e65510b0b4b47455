"""Initial schema. aerich writes SQL for one dialect; this migration carries both, chosen at run time."""
from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

_POSTGRES = """
        CREATE TABLE IF NOT EXISTS "provider_records" (
    "id" UUID NOT NULL PRIMARY KEY,
    "org" VARCHAR(128) NOT NULL,
    "kind" VARCHAR(32) NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "model" VARCHAR(200) NOT NULL,
    "endpoint" VARCHAR(2048),
    "api_version" VARCHAR(64),
    "key_ciphertext" TEXT NOT NULL,
    "key_last4" VARCHAR(4) NOT NULL,
    "health_status" VARCHAR(16) NOT NULL,
    "health_checked_at" TIMESTAMPTZ,
    "health_consecutive_failures" INT NOT NULL,
    "health_last_error" JSONB,
    "version" INT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    CONSTRAINT "uid_provider_re_org_9ddce5" UNIQUE ("org", "name")
);
CREATE INDEX IF NOT EXISTS "idx_provider_re_org_5409e8" ON "provider_records" ("org");
CREATE TABLE IF NOT EXISTS "active_providers" (
    "org" VARCHAR(128) NOT NULL PRIMARY KEY,
    "checked_version" INT NOT NULL,
    "activated_at" TIMESTAMPTZ NOT NULL,
    "activated_by" VARCHAR(256) NOT NULL,
    "provider_id" UUID NOT NULL UNIQUE REFERENCES "provider_records" ("id") ON DELETE RESTRICT
);
COMMENT ON TABLE "active_providers" IS 'One row per org with an active provider: the primary key makes \"exactly one\" a database fact.';
CREATE TABLE IF NOT EXISTS "jobs" (
    "id" UUID NOT NULL PRIMARY KEY,
    "org" VARCHAR(128) NOT NULL,
    "type" VARCHAR(16) NOT NULL,
    "provider_id" UUID NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "result" JSONB,
    "changes" JSONB,
    "expected_version" INT NOT NULL,
    "outcome" VARCHAR(64),
    "requested_by" VARCHAR(256) NOT NULL,
    "requested_role" VARCHAR(16) NOT NULL,
    "attempts" INT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "started_at" TIMESTAMPTZ,
    "finished_at" TIMESTAMPTZ,
    "deadline" TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_jobs_org_6c2738" ON "jobs" ("org");
CREATE INDEX IF NOT EXISTS "idx_jobs_provide_673462" ON "jobs" ("provider_id");
CREATE INDEX IF NOT EXISTS "idx_jobs_status_f35b2b" ON "jobs" ("status");
CREATE TABLE IF NOT EXISTS "audit_entries" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "org" VARCHAR(128) NOT NULL,
    "actor" VARCHAR(256) NOT NULL,
    "actor_role" VARCHAR(16) NOT NULL,
    "action" VARCHAR(32) NOT NULL,
    "provider_id" UUID,
    "outcome" VARCHAR(64) NOT NULL,
    "details" JSONB,
    "created_at" TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_audit_entri_org_359e11" ON "audit_entries" ("org", "id");
CREATE TABLE IF NOT EXISTS "alerts" (
    "id" UUID NOT NULL PRIMARY KEY,
    "kind" VARCHAR(32) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "org" VARCHAR(128),
    "provider_id" UUID,
    "message" TEXT NOT NULL,
    "open_key" VARCHAR(300) UNIQUE,
    "opened_at" TIMESTAMPTZ NOT NULL,
    "resolved_at" TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS "idx_alerts_status_e0bd0c" ON "alerts" ("status", "opened_at");
CREATE INDEX IF NOT EXISTS "idx_alerts_org_4bd99e" ON "alerts" ("org", "opened_at");
CREATE TABLE IF NOT EXISTS "heartbeats" (
    "component" VARCHAR(32) NOT NULL PRIMARY KEY,
    "seen_at" TIMESTAMPTZ NOT NULL,
    "detail" VARCHAR(256)
);
COMMENT ON TABLE "heartbeats" IS 'Last time each component (`worker`, `scheduler`) was heard from.';
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSONB NOT NULL
);"""

_SQLITE = """
        CREATE TABLE IF NOT EXISTS "provider_records" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "org" VARCHAR(128) NOT NULL,
    "kind" VARCHAR(32) NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "model" VARCHAR(200) NOT NULL,
    "endpoint" VARCHAR(2048),
    "api_version" VARCHAR(64),
    "key_ciphertext" TEXT NOT NULL,
    "key_last4" VARCHAR(4) NOT NULL,
    "health_status" VARCHAR(16) NOT NULL,
    "health_checked_at" TIMESTAMP,
    "health_consecutive_failures" INT NOT NULL,
    "health_last_error" JSON,
    "version" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    CONSTRAINT "uid_provider_re_org_9ddce5" UNIQUE ("org", "name")
);
CREATE INDEX IF NOT EXISTS "idx_provider_re_org_5409e8" ON "provider_records" ("org");
CREATE TABLE IF NOT EXISTS "active_providers" (
    "org" VARCHAR(128) NOT NULL PRIMARY KEY,
    "checked_version" INT NOT NULL,
    "activated_at" TIMESTAMP NOT NULL,
    "activated_by" VARCHAR(256) NOT NULL,
    "provider_id" CHAR(36) NOT NULL UNIQUE REFERENCES "provider_records" ("id") ON DELETE RESTRICT
) /* One row per org with an active provider: the primary key makes "exactly one" a database fact. */;
CREATE TABLE IF NOT EXISTS "jobs" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "org" VARCHAR(128) NOT NULL,
    "type" VARCHAR(16) NOT NULL,
    "provider_id" CHAR(36) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "result" JSON,
    "changes" JSON,
    "expected_version" INT NOT NULL,
    "outcome" VARCHAR(64),
    "requested_by" VARCHAR(256) NOT NULL,
    "requested_role" VARCHAR(16) NOT NULL,
    "attempts" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "started_at" TIMESTAMP,
    "finished_at" TIMESTAMP,
    "deadline" TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_jobs_org_6c2738" ON "jobs" ("org");
CREATE INDEX IF NOT EXISTS "idx_jobs_provide_673462" ON "jobs" ("provider_id");
CREATE INDEX IF NOT EXISTS "idx_jobs_status_f35b2b" ON "jobs" ("status");
CREATE TABLE IF NOT EXISTS "audit_entries" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "org" VARCHAR(128) NOT NULL,
    "actor" VARCHAR(256) NOT NULL,
    "actor_role" VARCHAR(16) NOT NULL,
    "action" VARCHAR(32) NOT NULL,
    "provider_id" CHAR(36),
    "outcome" VARCHAR(64) NOT NULL,
    "details" JSON,
    "created_at" TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_audit_entri_org_359e11" ON "audit_entries" ("org", "id");
CREATE TABLE IF NOT EXISTS "alerts" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "kind" VARCHAR(32) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "org" VARCHAR(128),
    "provider_id" CHAR(36),
    "message" TEXT NOT NULL,
    "open_key" VARCHAR(300) UNIQUE,
    "opened_at" TIMESTAMP NOT NULL,
    "resolved_at" TIMESTAMP
);
CREATE INDEX IF NOT EXISTS "idx_alerts_status_e0bd0c" ON "alerts" ("status", "opened_at");
CREATE INDEX IF NOT EXISTS "idx_alerts_org_4bd99e" ON "alerts" ("org", "opened_at");
CREATE TABLE IF NOT EXISTS "heartbeats" (
    "component" VARCHAR(32) NOT NULL PRIMARY KEY,
    "seen_at" TIMESTAMP NOT NULL,
    "detail" VARCHAR(256)
) /* Last time each component (`worker`, `scheduler`) was heard from. */;
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSON NOT NULL
);"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return _POSTGRES if db.capabilities.dialect == "postgres" else _SQLITE


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "heartbeats";
        DROP TABLE IF EXISTS "alerts";
        DROP TABLE IF EXISTS "audit_entries";
        DROP TABLE IF EXISTS "jobs";
        DROP TABLE IF EXISTS "active_providers";
        DROP TABLE IF EXISTS "provider_records";
        """


MODELS_STATE = (
    "eJztXFtv2zYU/iuEnlIgCxLbuawYBjhp1rpokyJ1t6JNodASbWuWSVWi4hhd/vtIWrJulC"
    "rZli2reklr8hyS+g55eC4kfyhToiPTOepq1HhEH2zyaOjIVl6CHwqGU8T+k0JxCBRoWUE9"
    "L6BwYAoWKGhVyyMWlXDgUJtVsPohNB3EinTkaLZhUYNgznWLEbDJDFjIBsQegZlBxwBisG"
    "gN+K29BHTMfxlTaM/BBM3BFE6QA+4V9MRIzTkgGN0rAAIdshFBB7EONXrEB6ETjY3CwKMt"
    "9HeP73F/HLQDhsRGxgiLJgwH3F1/7N/1rvqHwCGiiyW7QR1kDoGNhq7DOqIEMIQRRaHB2U"
    "gjti6+ycXGdxeplIwQa4XL7us3VmxgHT0hx/9pTdShgUw9Ilr21bwFUaHSuSUKr8bQ/kuQ"
    "csAGqkZMd4pD5Nacjgle0jNAeekIYWRDivSQgLFrmt6c8IsWo2UF1HbRcph6UKCjIXRNPk"
    "0492IIQZmiqje3ffXjdV9VlcQU8jlCUvaKNIL59DMwdQQCU/ikmgiP6Jj9PGldPC86CpBY"
    "kPEe/+7eXb3p3h0wqhe8S8Jm8WKa33hVrUXds2iECXHRjIA+wFobI22CdPWRrQc+2gTuPU"
    "zlsEs4YyJgn7WKCPyCQAbBytyGEEZ8EL+1TjrnnYv2WeeCkYiBLkvOM8TSu+kLxAOExdLg"
    "n69CmoT3FauhxhTJMY7zxgDWPeYj/z97CHcGlv3ee6aMuu8/8OanjvPdFIh1+9e8piVK57"
    "HSg7PYalg2Av7p9d8A/hN8ub25FnASh45s0WNA1/+i8DFBlxIVk5kK9TAmfrFflCLqwbyI"
    "BovzbUaV7XodRZRZ6/QshzJjVKnKTNRFl5a/h6mGnoT706feKzncMbYY2q5r6Eecee+2jw"
    "yABbrtBbjhWS++8/mZb8XDSWiD4AUDqE1m0NbVRA1pEelmYoXMsKgwmFHTJ+yPEEiPjRpi"
    "DUnA96w63567E/bEvgoiKA36t+FsafHEJyLDYWFR8TrfDlOeI7KIQs+rpq1pvARiOBIfzY"
    "fHByOHVWJOJ4FPN6eXo19YffnM6XQMJQbjV9+2E6P8ltd+LKYNdqEElD+GLtY4JED0xP90"
    "/lQqpxeyLMddWunJra0WZnoA7oR9WRF0ffoaWg7tVg54261UdHlVFFzxbwFwffoagntyfJ"
    "xn8h4fp09eXhfFV+wVRQBeMtQQ4VYuhFsZCLeSCCOsW8Rzr/OCHOZZCWdPxVYV5k4eNczJ"
    "MoDuJBQxtIz02EiGRxdlqx/eZ50caJ91UrHmVbEtD81VzbCY6UfRk2Rm91lpyuaX4KyFHs"
    "mKjFx/7keCIj6wB++7n19EAiPvbm9e++QhQVy9u72UCMCEDu0UMjzCTLWAPTrP80zz9Fme"
    "mORjBE06Vpn/S12nCM4Jxu1hzagnmMxwWe5JzCLJEyc6SQ8TnSSiRB50fry6eBRW2sAGQr"
    "EVU/B1isT6ImNfiDRXpP2G0DBd3kVC+qkpjp+0sr10x3FZS2/DuQ4PML4hqMi2iSQS+Pbj"
    "7U0m2lHm+DIzNAr+A6bh5MF6fxYYRyV7Q4/v3bFFwxuIb+jFc3o7yeWd7Mnk1my0Yhovyl"
    "nDJJ7CPlC/xebcW3R7spV4+iFzJ3EtfUWpRzkbqVdF6hIDQox+rSRYRpImlh9mNoRsX7z0"
    "mP1M2R0yIZXr4tSjT3u5HSayZM8Fs1pvyUCRpLJ48WFW/upfMighZ9UkqZok1S+SpBL4FE"
    "DXp69hmGjzUYvqnW3Z7XxeRz8EqBYPvJUfcUsqXkbpIr0sTVv2zGXo8/EmME73/AOOxt1f"
    "3d3XxhCPZPGtdOBDLA3yqyOPniyk0ZVOUctYm2PUkugLcalGip3bCLE0CdifJ2BtxD7TKX"
    "56Oc5XQ/OulNPLAW42MQtN7CRnDTHfvGECKUVTixbJAIVZmnRPExGve2w0T0SceUT2alKP"
    "cjYZ9OoEwJNSHhrYcMYriTnG2si5ynLWmZ4yDSyxP7KFHOarof7edxGXlcwqmJvpurpBrz"
    "G154rs8n5Qe5h5cZ/TqYgRGqj8lM3y1pGhL+4c5c7fXBqjVEtSGo+V2JCeqlsvdVO+X/97"
    "q9Vun7eO22cXp53z89OL46UxmazKsiove6+5YRlZHL6luS95nV16SWUkdtjKkqWoMy8wS4"
    "9r1QHhUnx/AVhhvz/KVUOsS/D5NSoNyGZfxl/j1ka1Ad78Zbqd5yn3xzcokKfcQbS72hN3"
    "8+FuHVFomIXSZSGWJl22RqKyCRv+ImHDqnihJrKpInNARcVhpu/JSbbhdAYHTYjFJq2Y5I"
    "xo6Y2GSptDhTs9VNg8zlCiPVnFE1pJgMVqLGvWlu0TbTF4UjFLZwuxk8YfKsMfmiLHYXt7"
    "EtH0VwFCLLVQvNt+DoBrOHWCCh0FCvNsRF9U6DnWdq6HXNoZD7m0kw+5BEZdAuVsTyjCWE"
    "NHaE8cn1wpVtYUMR9XEnOMtUmlV03OFfFw3yBo0wGCUi83qDzM8nTHPlnOh9HfQYcCPusA"
    "gtoYaGRqEYwwBQcPM2JPkP1wCB4cbYx0l/nQDy/ADDqAd6KDoU2myZfPN9HgGjfylv0V2f"
    "EiTLV7gnxT7l26L+0gZjGscJIsYGs2v8opxWSYvciSCjjq53JuLJlckX2ni2xDG8s2Ha8m"
    "c8eBAU1l7mD/Kgd41jwEnq7RV3gtcd2XEqumv+Nr/jTXmj/NWPOnyXcprSIIe+Q1RLeUF2"
    "xZj1RqCGZcpQxY1soNVw3tbSSHd7qZPf8PArsJJw=="
)
