"""Who got what: the sent-ledger on SQLite or PostgreSQL, its location, accounts and locks."""
