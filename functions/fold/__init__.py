"""The counter fold: shards of each changed customer-month -> month summary -> customer fields, quota alerts."""
