-- carimbo case store, schema version 1. Ids compare as bytes (COLLATE "C"), so every listing has
-- the same order as the sled store's keys.

-- One row per event. `event` is the stored event as JSON text (the `json` type keeps the text
-- exactly as written), so a verifier re-hashes exactly what was hashed.
CREATE TABLE events (
    case_id text COLLATE "C" NOT NULL,
    seq     bigint NOT NULL CHECK (seq >= 1),
    event   json NOT NULL,
    PRIMARY KEY (case_id, seq)
);

-- The current state of each case. `version` and `last_hash` are also inside `head`; the columns
-- are what appends lock and compare.
CREATE TABLE heads (
    case_id    text COLLATE "C" PRIMARY KEY,
    version    bigint NOT NULL,
    last_hash  text NOT NULL,
    status     text NOT NULL,
    form_id    text NOT NULL,
    opened_at  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    head       json NOT NULL
);

-- Open steps per person, oldest first: (since in ms, case, step, seat) is the order and the cursor.
CREATE TABLE inbox (
    person   text COLLATE "C" NOT NULL,
    since_ms bigint NOT NULL,
    case_id  text COLLATE "C" NOT NULL,
    step     text COLLATE "C" NOT NULL,
    seat     text COLLATE "C" NOT NULL,
    entry    json NOT NULL,
    PRIMARY KEY (person, since_ms, case_id, step, seat)
);
CREATE INDEX inbox_by_case ON inbox (case_id);

-- Who may see which case, newest first per person.
CREATE TABLE parties (
    person    text COLLATE "C" NOT NULL,
    opened_ms bigint NOT NULL,
    case_id   text COLLATE "C" NOT NULL,
    PRIMARY KEY (person, opened_ms, case_id)
);
CREATE INDEX parties_by_case ON parties (case_id);

-- The first result of an append made with an idempotency key.
CREATE TABLE idempotency (
    case_id text COLLATE "C" NOT NULL,
    key     text COLLATE "C" NOT NULL,
    record  json NOT NULL,
    PRIMARY KEY (case_id, key)
);

-- Definition bytes under their SHA-256 (hex).
CREATE TABLE definitions (
    hash  text COLLATE "C" PRIMARY KEY,
    bytes bytea NOT NULL
);
