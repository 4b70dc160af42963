-- The modern system: snake_case, UUID keys, split tables, decimals.
CREATE TABLE customers (
  id          TEXT PRIMARY KEY,
  email       TEXT,
  status      TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
  balance     NUMERIC NOT NULL DEFAULT 0,
  vip         BOOLEAN NOT NULL DEFAULT 0,
  first_name  TEXT,
  last_name   TEXT,
  created_at  TEXT DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE addresses (
  id          TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL REFERENCES customers(id),
  line1       TEXT,
  city        TEXT
);
CREATE TABLE orders (
  id          TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL REFERENCES customers(id),
  total       NUMERIC NOT NULL
);
