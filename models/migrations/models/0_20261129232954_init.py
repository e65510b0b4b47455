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
    "eJztXFtv2zYU/iuEnlIgCxLbuawYBjhp1rpokyJ1t6JNodASbXOWSVWi4hhd/vtIWrLuqm"
    "RbtqzqJa3Jc0jqO+ThuZD8oUypjgz7qKsx/Ig+WPQR68hSXoIfCoFTxP+TQnEIFGiafr0o"
    "YHBgSBYoaVXTJZaVcGAzi1fw+iE0bMSLdGRrFjYZpkRw3RIELDoDJrIAtUZghtkYQAIWrQ"
    "GvtZeAjcUvPIXWHEzQHEzhBNngXkFPnNSYA0rQvQIg0CEfEbQR71BjR2IQOtX4KDAZbaG/"
    "e3JP+mO/HTCkFsIjIpvANri7/ti/6131D4FNZRdLdsxsZAyBhYaOzTtiFHCEEUOBwVlIo5"
    "Yuv8kh+LuDVEZHiLciZPf1Gy/GREdPyPZ+mhN1iJGhh0TLv1q0ICtUNjdl4dUYWn9JUgHY"
    "QNWo4UxJgNycszElS3oOqCgdIYIsyJAeEDBxDMOdE17RYrS8gFkOWg5T9wt0NISOIaaJ4F"
    "4MwS9TVPXmtq9+vO6rqhKbQh5HQMpukUaJmH6YMFsiMIVPqoHIiI35z5PWxfOiIx+JBZno"
    "8e/u3dWb7t0Bp3ohuqR8Fi+m+Y1b1VrUPctGuBAXzUjofay1MdImSFcf+XoQo43h3iMsGf"
    "YEzogI+GetIgKvwJeBvzK3IYSRGMRvrZPOeeeifda54CRyoMuS8wyx9G76EnEfYbk0xOer"
    "kMXhfcVrGJ6iZIyjvBGAdZf5yPvPHsKdgWW/954ro+77D6L5qW1/NyRi3f61qGnJ0nmk9O"
    "AsshqWjYB/ev03QPwEX25vriWc1GYjS/bo0/W/KGJM0GFUJXSmQj2IiVfsFaWIejAvosGi"
    "fJtRZbteRyFl1jo9y6HMOFWqMpN14aXl7WEq1uNwf/rUe5UMd4QtgrbjYP1IMO/d9pEBsE"
    "S3vQA3OOvldz4/i614OAlsEKJgALXJDFq6GquhLZq4mZgBMywsDG7U9Cn/IwXS46OGREMJ"
    "4LtWnWfP3Ul7Yl8F4Zf6/VtwtrR4ohOR47CwqESdZ4cpzyFZhKEXVdPWNFoCCRzJjxbDE4"
    "NJhjXBnI4Dn25OL0e/sPrymdPpGCYYjF89206O8lte+7GYNtiFElD+GDpEE5AA2ZP40/lT"
    "qZxeyLIcd2mlx7e2WpjpPrgT/mVF0PXoa2g5tFs54G23UtEVVWFw5b8FwPXoawjuyfFxns"
    "l7fJw+eUVdGF+5VxQBeMlQQ4RbuRBuZSDciiOMiG5S173OC3KQZyWcXRVbVZg7edSwIMsA"
    "uhNTxNDE6bGRDI8uzFY/vM86OdA+66RiLaoiWx6aqxo2uenH0FPCzO7z0pTNL8ZZCz2SFR"
    "m5/twPBUU8YA/edz+/CAVG3t3evPbIA4K4end7mSAAA9qsU8jwCDLVAvbwPM8zzdNneWyS"
    "jxE02Fjl/i9z7CI4xxi3hzWnnhA6I2W5JxGLJE+c6CQ9THQSixK50Hnx6uJR2MQGNhCKrZ"
    "iCr1Mk1hMZ/0KkOTLtN4TYcEQXMemnpjh+0sr20h3HZS29Dec6XMDEhqAiy6IJkcC3H29v"
    "MtEOM0eXGdYY+A8Y2M6D9f4sMIFK9oYe3bsji0Y0EN3Qi+f0dpLLO9mTya1ZaMU0Xpizhk"
    "k8hX+gfkuMubvo9mQrcfVD5k7imPqKUg9zNlKvitQTDAg5+rWSYBlJmkh+mNsQSfvipcvs"
    "ZcrukAFZsi5OPfq0l9thLEv2XDCr9ZYOlIRUlig+zMpf/UsHJeSsmiRVk6T6RZJUEp8C6H"
    "r0NQwTbT5qUb2zLbudz+voBx/V4oG38iNuccXLKR2kl6Vpy565HH0x3hjG6Z6/z9G4+6u7"
    "+9oYklFSfCsd+ABLg/zqyKMnE2lspVPUSazNMeqE6At1mEaLndsIsDQJ2J8nYC3EP9Mufn"
    "o5yldD866U08uQMTQ1WZGERJClyT40Adq6h+ryBGi5gW6tJvUwZ5PQrU48Ni7lISbYHq8k"
    "5ghrI+cqy1nnesrAJMHOyxZykK+G+nvfRVxWbqVgqqDr6JhdE2bNlaS75H7tYeY9ckGnIk"
    "6IUfkZhOUlGKwvrsDkTidc4lGqJZkYHkywIV1Vt14moXw38/dWq90+bx23zy5OO+fnpxfH"
    "S2MyXpVlVV72XgvDMrQ4PEtzX9IMu4yDl5Fn4CsrKWOaeZ828fRQHRAuxxUVgKkWNQrFV8"
    "JcNcR687FxqLHE+GD23fA1LhFUG+DN3+3aedpsf3yDAmmzHQRfqz1xNx991RGD2CiUvQmw"
    "NNmbNfJmTdjwFwkbVsULNZDFlCQHVFYcZvqegmQbTqd/7oGafNLKSc6Jlt5ooLQ547bTM2"
    "7NWwEl2pNVPDAUB1iuxrJmbdk+0RaDJxWzdLYQO2n8oTL8oSmybb63xxFNv6QeYKmF4t32"
    "7XSh4dQJKnQyJcizEX1RoddB27neFWlnvCvSjr8r4ht1MZSzPaEQYw0doT1xfHKlWHlT1H"
    "hcScwR1iaVXjU5V8TDfYOgxQYIJnq5fuVhlqc79shyvtP9DtoMiFkHENTGQKNTkxJEGDh4"
    "mFFrgqyHQ/Bga2OkO9yHfngBZtAGohMdDC06jT/EvYkG17ggtuyvyI4XYqrdi9ibcu/SfW"
    "kbcYthhZNkPluz+VVOKcbD7EWWlM9RP5dzY8nkiuw7XWRhbZy06bg1mTsO9GkqcyX4VznA"
    "s+Yh8HSNvsLjfes+3Fc1/R1d86e51vxpxpo/jT+TaBZB2CWvIbqlPKjKe2SJhmDGzT6fZa"
    "3ccNXQ3kZyeKeb2fP/tt2SQw=="
)
