"""The alerts routes (issue 12 part B; being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["alerts"])
