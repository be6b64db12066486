"""Retrieval-QA chain types: ``stuff``, ``refine``, ``map_reduce``, ``map_rerank`` (as in LangChain)."""

from . import prompts
from .base import LLM, ChainResult, ChainType, GenerationError, Numbered, get_chain_type

__all__ = ["LLM", "ChainResult", "ChainType", "GenerationError", "Numbered", "get_chain_type", "prompts"]
