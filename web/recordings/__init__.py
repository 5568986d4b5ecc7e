"""A recording's whole life: lifecycle, spool, publish, live streams, uploads, playback, redaction, export and the worker's jobs."""
