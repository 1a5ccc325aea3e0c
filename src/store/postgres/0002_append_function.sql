-- One append in one statement (so one round trip, and in autocommit its own transaction).
-- The caller has hashed the events against the head it read (version p_expected, hash p_prev);
-- this function takes the case's row lock, checks that the head is still that one, and writes
-- events, head, inbox, parties and the idempotency record. It answers one row:
--   ('appended', version, NULL)   written (the caller's statement commits it);
--   ('replayed', NULL, record)    the idempotency key was used before: its record, nothing written;
--   ('conflict', found, NULL)     the case is at another version: nothing written;
--   ('not_found', NULL, NULL)     no such case (p_expected > 0).
-- An event key that already exists raises unique_violation (23505): the log and head disagree.
CREATE FUNCTION carimbo_append(
    p_case text, p_expected bigint, p_prev text,
    p_version bigint, p_last_hash text, p_status text, p_form_id text,
    p_opened_at timestamptz, p_updated_at timestamptz, p_head json,
    p_seqs bigint[], p_events text[],
    p_in_person text[], p_in_since bigint[], p_in_step text[], p_in_seat text[], p_in_entry text[],
    p_parties text[], p_opened_ms bigint,
    p_key text, p_record text
) RETURNS TABLE (outcome text, found_version bigint, replay text)
LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
    h text;
    r text;
BEGIN
    IF p_expected = 0 THEN
        INSERT INTO heads (case_id, version, last_hash, status, form_id, opened_at, updated_at, head)
        VALUES (p_case, p_version, p_last_hash, p_status, p_form_id, p_opened_at, p_updated_at, p_head)
        ON CONFLICT (case_id) DO NOTHING;
        IF NOT FOUND THEN
            -- Someone else created it (this waited for their commit): a retry, or a conflict.
            IF p_key IS NOT NULL THEN
                SELECT i.record::text INTO r FROM idempotency i WHERE i.case_id = p_case AND i.key = p_key;
                IF FOUND THEN
                    RETURN QUERY SELECT 'replayed'::text, NULL::bigint, r;
                    RETURN;
                END IF;
            END IF;
            SELECT hd.version INTO v FROM heads hd WHERE hd.case_id = p_case;
            RETURN QUERY SELECT 'conflict'::text, v, NULL::text;
            RETURN;
        END IF;
    ELSE
        SELECT hd.version, hd.last_hash INTO v, h FROM heads hd WHERE hd.case_id = p_case FOR UPDATE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'not_found'::text, NULL::bigint, NULL::text;
            RETURN;
        END IF;
        IF p_key IS NOT NULL THEN
            SELECT i.record::text INTO r FROM idempotency i WHERE i.case_id = p_case AND i.key = p_key;
            IF FOUND THEN
                RETURN QUERY SELECT 'replayed'::text, NULL::bigint, r;
                RETURN;
            END IF;
        END IF;
        IF v <> p_expected OR h <> p_prev THEN
            RETURN QUERY SELECT 'conflict'::text, v, NULL::text;
            RETURN;
        END IF;
        UPDATE heads SET version = p_version, last_hash = p_last_hash, status = p_status, form_id = p_form_id,
               opened_at = p_opened_at, updated_at = p_updated_at, head = p_head
         WHERE case_id = p_case;
    END IF;

    INSERT INTO events (case_id, seq, event)
    SELECT p_case, s, e::json FROM unnest(p_seqs, p_events) AS u(s, e);

    DELETE FROM inbox WHERE case_id = p_case;
    INSERT INTO inbox (person, since_ms, case_id, step, seat, entry)
    SELECT p, s, p_case, st, se, e::json FROM unnest(p_in_person, p_in_since, p_in_step, p_in_seat, p_in_entry) AS u(p, s, st, se, e);

    DELETE FROM parties WHERE case_id = p_case;
    INSERT INTO parties (person, opened_ms, case_id)
    SELECT p, p_opened_ms, p_case FROM unnest(p_parties) AS u(p);

    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency (case_id, key, record) VALUES (p_case, p_key, p_record::json);
    END IF;
    RETURN QUERY SELECT 'appended'::text, p_version, NULL::text;
END
$$;
