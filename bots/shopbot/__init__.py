"""The shop bot: merchant and buyer commands from any Matrix client."""
