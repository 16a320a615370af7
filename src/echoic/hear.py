"""HEAR 2021 API entry point: ``hearvalidator echoic.hear`` and hear-eval-kit use this module."""

from echoic.embed.hear import (
    HearModel,
    get_scene_embeddings,
    get_timestamp_embeddings,
    load_model,
)

__all__ = ["HearModel", "get_scene_embeddings", "get_timestamp_embeddings", "load_model"]
