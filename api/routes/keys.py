"""The server's public encryption keys, for phones to seal batches to."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.deps import ConnDep
from core.keys.service import list_keys

router = APIRouter(tags=["keys"])


class PublicKey(BaseModel):
    key_id: str
    public_key: str = Field(description="X25519 public key, base64url (32 bytes)")
    status: Literal["current", "active", "retired"]
    created_at: datetime


class KeyList(BaseModel):
    keys: list[PublicKey]


@router.get("/v1/keys", response_model=KeyList)
def get_keys(conn: ConnDep, response: Response) -> KeyList:
    """Published keys: seal new batches to the `current` one; `active` ones still decrypt."""
    # Short enough that a rotation reaches phones quickly; they also refetch on unknown_key.
    response.headers["Cache-Control"] = "public, max-age=60"
    return KeyList.model_validate({"keys": [k.public_document() for k in list_keys(conn)]})
