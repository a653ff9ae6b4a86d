"""Tests of the source adapters (etl/sources/)."""

# Rejections that name no record, so carry no lead_id: the row has no id, or the CSV reader could not split it
# (its fields may be shifted). Every other rejection of a pull-capable adapter names its journey.
NAME_NO_RECORD = frozenset({"missing_lead_id", "wrong_column_count", "malformed_csv", "invalid_encoding"})
