-- 0022: whether the transaction in flight to a destination was built in
-- catch-up mode (the newest event of each room only). A transaction is
-- retried exactly as it was built, read back from its recorded positions
-- after a failure or a restart; without the flag it was then counted (and
-- logged) as a normal one.
ALTER TABLE federation_destinations ADD COLUMN txn_catch_up BOOLEAN NOT NULL DEFAULT false;
