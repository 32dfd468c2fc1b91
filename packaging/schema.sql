-- schema.sql: Postern's default database schema (DESIGN.md §6).
--
-- This is the schema of the common Postfix+Dovecot+MySQL guide, column for column, so an
-- existing mail database works with Postern as is and rows inserted with plain SQL are seen
-- by Postern. Load it into an existing, selected database:
--   mariadb mailserver < schema.sql
-- Every statement is idempotent (IF NOT EXISTS), so loading it twice is harmless.
--
-- virtual_users.password holds a crypt(3) hash, with or without Dovecot's {SCHEME} prefix.
-- The guide's varchar(106) fits a SHA512-CRYPT hash ($6$, 16-character salt) without a prefix
-- (106 characters) or a yescrypt hash ($y$, about 73) with one; "{SHA512-CRYPT}$6$..." is 120
-- characters and does not fit, so whatever writes hashes into this schema must not use it.

CREATE TABLE IF NOT EXISTS virtual_domains (
  id int(11) NOT NULL auto_increment,
  name varchar(50) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE IF NOT EXISTS virtual_users (
  id int(11) NOT NULL auto_increment,
  domain_id int(11) NOT NULL,
  password varchar(106) NOT NULL,
  email varchar(100) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY email (email),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE IF NOT EXISTS virtual_aliases (
  id int(11) NOT NULL auto_increment,
  domain_id int(11) NOT NULL,
  source varchar(100) NOT NULL,
  destination varchar(100) NOT NULL,
  PRIMARY KEY (id),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
