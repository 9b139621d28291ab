"""The FastAPI app: auth, JSON API, HTML pages, plotly figures. Imports `store` and `alerts` only."""
