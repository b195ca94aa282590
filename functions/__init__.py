"""The deployed Cloud Functions (2nd gen): entry points in `main`, the table in `table`."""
