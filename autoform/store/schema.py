"""The store's schema: its version and the migrations that reach it, one per version (never edited once
released; a change is a new migration)."""

from __future__ import annotations

SCHEMA_VERSION = 8

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE books (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL DEFAULT '',
        source_path TEXT NOT NULL,
        source_kind TEXT NOT NULL CHECK (source_kind IN ('latex', 'pdf')),
        ingested_at REAL NOT NULL,
        warnings TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE units (
        id INTEGER PRIMARY KEY,
        book_id INTEGER NOT NULL REFERENCES books(id) ON DELETE CASCADE,
        ident TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        number TEXT NOT NULL DEFAULT '',
        title TEXT NOT NULL DEFAULT '',
        label TEXT NOT NULL DEFAULT '',
        statement TEXT NOT NULL,
        statement_raw TEXT NOT NULL DEFAULT '',
        proof TEXT NOT NULL DEFAULT '',
        chapter TEXT NOT NULL DEFAULT '',
        section TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        refs TEXT NOT NULL DEFAULT '[]',
        present INTEGER NOT NULL DEFAULT 1,
        status TEXT NOT NULL DEFAULT 'pending',
        UNIQUE (book_id, ident)
    );
    CREATE INDEX units_book ON units(book_id, seq);
    CREATE TABLE unit_deps (
        unit_id INTEGER NOT NULL REFERENCES units(id) ON DELETE CASCADE,
        dep_id INTEGER NOT NULL REFERENCES units(id) ON DELETE CASCADE,
        via TEXT NOT NULL DEFAULT 'ref',
        PRIMARY KEY (unit_id, dep_id)
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        book_id INTEGER NOT NULL REFERENCES books(id),
        status TEXT NOT NULL CHECK (status IN ('running', 'done', 'interrupted', 'failed')),
        params TEXT NOT NULL DEFAULT '{}',
        started_at REAL NOT NULL,
        finished_at REAL,
        pid INTEGER,
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE posts (
        id INTEGER PRIMARY KEY,
        book_id INTEGER NOT NULL REFERENCES books(id),
        unit_id INTEGER REFERENCES units(id),
        job_id INTEGER REFERENCES jobs(id),
        round INTEGER NOT NULL DEFAULT 0,
        author TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}',
        refs TEXT NOT NULL DEFAULT '[]',
        pinned INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX posts_unit ON posts(unit_id, kind);
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        unit_id INTEGER NOT NULL REFERENCES units(id),
        n INTEGER NOT NULL,
        author TEXT NOT NULL,
        stage TEXT NOT NULL CHECK (stage IN ('statement', 'proof', 'definition')),
        lean_code TEXT NOT NULL,
        admitted INTEGER NOT NULL,
        reasons TEXT NOT NULL DEFAULT '[]',
        messages TEXT NOT NULL DEFAULT '[]',
        axioms TEXT,
        toolchain TEXT NOT NULL DEFAULT '',
        elapsed_s REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX attempts_unit ON attempts(unit_id, job_id);
    CREATE TABLE atlas_entries (
        id INTEGER PRIMARY KEY,
        unit_id INTEGER NOT NULL UNIQUE REFERENCES units(id),
        book_id INTEGER NOT NULL REFERENCES books(id),
        decl_name TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('proved', 'defined', 'stated')),
        statement_lean TEXT NOT NULL,
        lean_code TEXT NOT NULL,
        attempt_id INTEGER REFERENCES attempts(id),
        job_id INTEGER REFERENCES jobs(id),
        model TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        UNIQUE (book_id, decl_name)
    );
    CREATE TABLE llm_calls (
        id INTEGER PRIMARY KEY,
        cache_key TEXT NOT NULL,
        job_id INTEGER,
        unit_id INTEGER,
        role TEXT NOT NULL,
        model TEXT NOT NULL,
        request TEXT NOT NULL,
        response TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cached INTEGER NOT NULL DEFAULT 0,
        posts_used TEXT NOT NULL DEFAULT '[]',
        elapsed_s REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX llm_calls_key ON llm_calls(cache_key);
    CREATE TABLE builds (
        id INTEGER PRIMARY KEY,
        ok INTEGER NOT NULL,
        command TEXT NOT NULL,
        output TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    2: """
    CREATE TABLE lean_cache (
        key TEXT PRIMARY KEY,
        toolchain TEXT NOT NULL,
        result TEXT NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE lean_checks (
        id INTEGER PRIMARY KEY,
        job_id INTEGER,
        cached INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        elapsed_s REAL NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX lean_checks_job ON lean_checks(job_id);
    """,
    3: """
    CREATE TABLE embeddings (
        key TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        vector TEXT NOT NULL
    );
    """,
    4: """
    ALTER TABLE attempts ADD COLUMN elaborated_type TEXT NOT NULL DEFAULT '';
    CREATE TABLE decl_names (
        book_id INTEGER NOT NULL REFERENCES books(id),
        name TEXT NOT NULL,
        unit_id INTEGER NOT NULL REFERENCES units(id),
        PRIMARY KEY (book_id, name)
    );
    CREATE INDEX posts_book ON posts(book_id, id);
    INSERT OR IGNORE INTO decl_names (book_id, name, unit_id) SELECT book_id, decl_name, unit_id FROM atlas_entries;
    INSERT OR IGNORE INTO decl_names (book_id, name, unit_id)
        SELECT book_id, json_extract(data, '$.name'), unit_id FROM posts
        WHERE kind = 'lock' AND unit_id IS NOT NULL AND json_extract(data, '$.name') IS NOT NULL;
    """,
    # an attempt made for a statement the book no longer has (re-ingest changed it): kept, no longer counted
    5: """
    ALTER TABLE attempts ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;
    """,
    # people in the loop: reviews of a statement's fidelity, and Atlas entries withdrawn (a rejection, a
    # person's new statement, or a dependency withdrawn) kept as history
    6: """
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY,
        book_id INTEGER NOT NULL REFERENCES books(id),
        unit_id INTEGER NOT NULL REFERENCES units(id),
        decl_name TEXT NOT NULL,
        statement_lean TEXT NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('approved', 'rejected')),
        reason TEXT NOT NULL DEFAULT '',
        reviewer TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE INDEX reviews_unit ON reviews(unit_id, id);
    CREATE TABLE atlas_history (
        id INTEGER PRIMARY KEY,
        entry_id INTEGER NOT NULL,
        unit_id INTEGER NOT NULL REFERENCES units(id),
        book_id INTEGER NOT NULL REFERENCES books(id),
        decl_name TEXT NOT NULL,
        status TEXT NOT NULL,
        statement_lean TEXT NOT NULL,
        lean_code TEXT NOT NULL,
        attempt_id INTEGER,
        job_id INTEGER,
        model TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        removed_at REAL NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX atlas_history_unit ON atlas_history(unit_id, id);
    """,
    # every unit a person re-opened (a retry, a rejection, a new statement, a unit re-checked because of
    # them), with the proof budget a retry gave it: a running job takes these units up again, and counts
    # their proof's spend from the re-opening on
    7: """
    CREATE TABLE reopenings (
        id INTEGER PRIMARY KEY,
        book_id INTEGER NOT NULL REFERENCES books(id),
        unit_id INTEGER NOT NULL REFERENCES units(id),
        cause TEXT NOT NULL CHECK (cause IN ('retry', 'reject', 'state', 'recheck')),
        limits TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    );
    CREATE INDEX reopenings_book ON reopenings(book_id, id);
    CREATE INDEX reopenings_unit ON reopenings(unit_id, id);
    INSERT INTO reopenings (book_id, unit_id, cause, created_at)
        SELECT book_id, unit_id, CASE WHEN json_extract(data, '$.retry') THEN 'retry' ELSE 'reject' END, created_at
        FROM posts WHERE kind = 'hint' AND author = 'person' AND unit_id IS NOT NULL
        AND (json_extract(data, '$.retry') OR json_extract(data, '$.review') = 'rejected')
        ORDER BY id;
    """,
    # what a reader could not keep of a unit's statement (a PDF's math built up over lines, a figure left out)
    8: """
    ALTER TABLE units ADD COLUMN flags TEXT NOT NULL DEFAULT '[]';
    """,
}
