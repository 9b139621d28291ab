"""Scenario models, TTS/ChirpStack message builders, publisher, recorder/replayer.

Imports `decoders` only (its encoders build the payloads)."""
