-- schema.sql — Ancora's history database schema, readable copy.
-- The source of truth is the migration list in history/store.c
-- (tests/test_history.c fails if the two differ). Each "-- version N"
-- section brings a database from version N-1 to N, in one transaction;
-- PRAGMA user_version holds the version and PRAGMA application_id
-- 1095648082 (0x414E4352, "ANCR") marks the file as Ancora's.
-- Times are Unix milliseconds (UTC). Explore with:
--   sqlite3 ~/.local/share/ancora/history.db
--   SELECT id, title, datetime(updated_ms / 1000, 'unixepoch') FROM sessions;
-- See docs/history.md for the meaning of every column.

-- version 1
PRAGMA application_id = 1095648082;
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
    title       TEXT    NOT NULL DEFAULT '',
    model_path  TEXT    NOT NULL DEFAULT '',
    model_name  TEXT    NOT NULL DEFAULT '',
    params      TEXT    NOT NULL DEFAULT '{}', -- JSON: engine parameters in force
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL                -- last activity
);
CREATE INDEX sessions_by_activity ON sessions(updated_ms, id);
CREATE TABLE messages (
    id                INTEGER PRIMARY KEY,
    session_id        INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role              TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content           TEXT    NOT NULL DEFAULT '',
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    prompt_ms         REAL,
    gen_ms            REAL,
    -- NULL: a user/system message, or an assistant reply still streaming
    finish_reason     TEXT CHECK (finish_reason IN
                          ('stop', 'length', 'cancelled', 'error', 'interrupted')),
    writer_pid        INTEGER, -- process streaming this reply (NULL once finished)
    created_ms        INTEGER NOT NULL
);
CREATE INDEX messages_by_session ON messages(session_id, id);
CREATE INDEX messages_streaming ON messages(id)
    WHERE role = 'assistant' AND finish_reason IS NULL;
PRAGMA user_version = 1;
-- version 2
CREATE TABLE param_events (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    message_id  INTEGER REFERENCES messages(id) ON DELETE SET NULL, -- last message before
    name        TEXT    NOT NULL,
    old_value   TEXT,
    new_value   TEXT,
    at_ms       INTEGER NOT NULL
);
CREATE INDEX param_events_by_session ON param_events(session_id, id);
CREATE INDEX param_events_by_message ON param_events(message_id);
-- Full-text index over messages.content, kept in sync by the triggers.
-- trigram: substring search that works for Chinese and other unspaced text.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content = 'messages', content_rowid = 'id', tokenize = 'trigram');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages
WHEN old.content IS NOT new.content BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
PRAGMA user_version = 2;
-- version 3
-- What was in force while each reply was generated, and what it measured.
-- Every column is NULL on rows written before version 3 (and on user and
-- system messages).
ALTER TABLE messages ADD COLUMN cache_policy   TEXT;    -- sink, window, recompute, full
ALTER TABLE messages ADD COLUMN window_length  INTEGER;
ALTER TABLE messages ADD COLUMN sinks          INTEGER;
ALTER TABLE messages ADD COLUMN rope_type      TEXT;    -- none, linear, dynamic, yarn, llama3
ALTER TABLE messages ADD COLUMN rope_base      REAL;
ALTER TABLE messages ADD COLUMN rope_factor    REAL;
ALTER TABLE messages ADD COLUMN adapter        TEXT;    -- a LoRA adapter (none yet)
ALTER TABLE messages ADD COLUMN template       TEXT;    -- chat template name
ALTER TABLE messages ADD COLUMN cache_used     INTEGER; -- cache entries when the reply ended
ALTER TABLE messages ADD COLUMN cache_capacity INTEGER;
ALTER TABLE messages ADD COLUMN sink_share     REAL;    -- mean share of attention on sinks
-- A reply's token ids as fed to the model (int32 little-endian), for
-- replay; in their own table so that scans of messages stay small.
CREATE TABLE message_tokens (
    message_id  INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    ids         BLOB    NOT NULL
);
-- Fingerprint of the model's vocabulary (replay checks it).
ALTER TABLE sessions ADD COLUMN vocab_hash     TEXT;
PRAGMA user_version = 3;
