-- Schema version 3: the outbox (messages for other systems, written with the append that
-- produced them) and an append function that writes them in the same transaction.

-- One row per message. `id` is `{case_id}/{seq}/{n}`; `at` is the `recorded_at` of the append's
-- events. `delivery`, `settled` and `dead` belong to the dispatcher (`outbox_update`).
CREATE TABLE outbox (
    id       text COLLATE "C" PRIMARY KEY,
    case_id  text COLLATE "C" NOT NULL,
    seq      bigint NOT NULL CHECK (seq >= 1),
    at       timestamptz NOT NULL,
    kind     text NOT NULL,
    payload  json NOT NULL,
    delivery json NOT NULL DEFAULT '{}',
    settled  boolean NOT NULL DEFAULT false,
    dead     boolean NOT NULL DEFAULT false
);
-- `outbox_since` pages in (at, id) order; the dispatcher's scans of unsettled messages and
-- dead letters read partial indexes as small as those sets.
CREATE INDEX outbox_by_at ON outbox (at, id);
CREATE INDEX outbox_unsettled ON outbox (at, id) WHERE NOT settled;
CREATE INDEX outbox_dead_letters ON outbox (at, id) WHERE dead;
CREATE INDEX outbox_by_case ON outbox (case_id);

-- `carimbo_append` (migration 2) plus the append's outbox messages, in the same transaction:
-- they are inserted only when the append was written, so a conflict or an idempotent retry
-- writes none. Answers like `carimbo_append`. `carimbo_append` itself stays, unchanged, for
-- processes of the previous version still running during an upgrade.
CREATE FUNCTION carimbo_append_outbox(
    p_case text, p_expected bigint, p_prev text,
    p_version bigint, p_last_hash text, p_status text, p_form_id text,
    p_opened_at timestamptz, p_updated_at timestamptz, p_head json,
    p_seqs bigint[], p_events text[],
    p_in_person text[], p_in_since bigint[], p_in_step text[], p_in_seat text[], p_in_entry text[],
    p_parties text[], p_opened_ms bigint,
    p_key text, p_record text,
    p_at timestamptz, p_out_ids text[], p_out_kinds text[], p_out_payloads text[]
) RETURNS TABLE (outcome text, found_version bigint, replay text)
LANGUAGE plpgsql AS $$
DECLARE
    o text;
    f bigint;
    r text;
BEGIN
    SELECT a.outcome, a.found_version, a.replay INTO o, f, r
      FROM carimbo_append(p_case, p_expected, p_prev, p_version, p_last_hash, p_status, p_form_id,
                          p_opened_at, p_updated_at, p_head, p_seqs, p_events,
                          p_in_person, p_in_since, p_in_step, p_in_seat, p_in_entry,
                          p_parties, p_opened_ms, p_key, p_record) AS a;
    IF o = 'appended' THEN
        INSERT INTO outbox (id, case_id, seq, at, kind, payload)
        SELECT i, p_case, p_version, p_at, k, pl::json FROM unnest(p_out_ids, p_out_kinds, p_out_payloads) AS u(i, k, pl);
    END IF;
    RETURN QUERY SELECT o, f, r;
END
$$;
