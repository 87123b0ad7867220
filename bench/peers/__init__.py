"""Peers of the standings fold: Quix Streams and Kafka Streams folding the bench topic into per-team totals."""
