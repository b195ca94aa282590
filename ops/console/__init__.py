"""The billing console: a read-only web page on the usage and configuration data."""
