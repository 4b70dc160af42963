-- The legacy system: wide uppercase tables, code columns, cents, "LAST, FIRST" names, integer keys.
CREATE TABLE CUSTMAST (
  CUSTNO     INTEGER PRIMARY KEY,
  CNAME      TEXT NOT NULL,            -- "LAST, FIRST"
  EMAIL      TEXT,
  STAT       TEXT NOT NULL DEFAULT 'A',      -- A active, I inactive (the old app does not check)
  BAL_CENTS  INTEGER NOT NULL DEFAULT 0,
  VIP        CHAR(1) NOT NULL DEFAULT 'N',   -- Y/N flag
  ADDR1      TEXT,
  CITY       TEXT,
  CRTDT      TEXT DEFAULT (date('now')), -- unmapped: Tandem never touches it
  FILLER1    TEXT
);
CREATE TABLE ORDHDR (
  ORDNO       INTEGER PRIMARY KEY,
  CUSTNO      INTEGER NOT NULL REFERENCES CUSTMAST(CUSTNO),
  TOTAL_CENTS INTEGER NOT NULL,
  ORDDT       TEXT DEFAULT (date('now'))
);
