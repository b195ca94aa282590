"""The deployed Cloud Functions (2nd gen): entry points in `functions.main`, table in `functions.table`."""
