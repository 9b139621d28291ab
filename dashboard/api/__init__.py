"""The routers of the JSON API (`/api/v1/...`) and the operational endpoints (health, metrics)."""
