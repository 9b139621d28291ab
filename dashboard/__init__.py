"""The FastAPI app: auth, JSON API, HTML pages, plotly figures. Imports `store` and `alerts` only.

`dashboard.app.create_app(settings)` builds the app from `dashboard.config.ApiSettings` (plain values
the composition root makes from the environment). Modules: `config` (settings), `errors` (the JSON
error body), `passwords` (argon2), `tokens` (session and API token formats), `auth` (login, CSRF,
authentication), `deps` (the per-request database connection acting as the user's role), `metrics`,
`pagination` (keyset cursors), `api/` (routers).
"""
