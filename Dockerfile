FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY decoders decoders
COPY store store
COPY ingest ingest
COPY alerts alerts
COPY dashboard dashboard
COPY simulators simulators
COPY lorawatch lorawatch
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT []
