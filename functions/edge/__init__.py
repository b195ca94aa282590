"""The edge: turns each delivered CloudEvent into one typed value; nothing downstream sees bytes."""
