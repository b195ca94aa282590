"""The counter fold: changed shards -> month summaries -> customer fields and quota alerts."""
