"""Simulated sensor feeds: scenario models with ground-truth labels, TTS/ChirpStack message builders,
a capture format, and an MQTT publisher, recorder and replayer. Imports `decoders` only (its encoders
build the device payloads). See docs/simulators.md.

Modules: `scenarios` (the named scenarios), `gully` + `hydrology` (gully fleet, water model),
`care` + `routine` (care fleet, residents' days), `payloads` (device decoded forms), `fleet` (ids,
gateways, radio links), `radio` (RSSI/SNR, SF, airtime), `transmitter` (sessions, FCnt, loss),
`simulation` (a run: merged records + labels), `tts` / `chirpstack` (message builders), `feed` (run to
messages), `parallel` (worker processes), `capture`, `publisher`, `recorder`, `replay`, `mqttclient`,
`timefmt`, `ids`, `model`, `run`.
"""
