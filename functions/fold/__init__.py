"""The fold: new usage records -> month summaries -> customer counters and quota alerts."""
