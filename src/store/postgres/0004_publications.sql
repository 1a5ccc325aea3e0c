-- Schema version 4: publications of definitions through the administrators' API, in order.
-- `seq` counts from 1 with no gap (a publication is written only as the next one); `body` is
-- the JSON `Publication` (who, when, each definition's id, version, hash and changes). The
-- definitions' bytes are in `definitions`, under their hash.
CREATE TABLE publications (
    seq       bigint PRIMARY KEY CHECK (seq >= 1),
    at        timestamptz NOT NULL,
    by_person text NOT NULL,
    body      jsonb NOT NULL
);
