"""Trace context through the pipeline: W3C ``traceparent`` carried in Kafka record headers through every hop,
with ids derived from what is traced (``context``), set per processed record and put on its outputs
(``propagation``), and exported as OpenTelemetry spans over OTLP when configured (``otel``). The operator command
that reads a trace back from the topics and the ledger is ``crownstream trace`` (crownstream/trace_report.py)."""
