"""MQTT ingestion: envelope parsing (TTS, ChirpStack), decoding, dedup keys, batching, dead letters,
backfill. Imports `decoders` and `store` only."""
