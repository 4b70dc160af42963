-- The modern system of examples/tandem.yaml on PostgreSQL: UUID keys, exact
-- decimals, time zones.
CREATE TABLE customers (
  id          uuid PRIMARY KEY,
  email       text,
  status      text NOT NULL CHECK (status IN ('active', 'inactive')),
  balance     numeric(14, 2) NOT NULL DEFAULT 0,
  vip         boolean NOT NULL DEFAULT false,
  first_name  text,
  last_name   text,
  created_at  timestamptz DEFAULT now()
);
CREATE TABLE addresses (
  id          uuid PRIMARY KEY,
  customer_id uuid NOT NULL REFERENCES customers(id),
  line1       text,
  city        text
);
CREATE TABLE orders (
  id          uuid PRIMARY KEY,
  customer_id uuid NOT NULL REFERENCES customers(id),
  total       numeric(14, 2) NOT NULL
);
