"""Output parsers: turn a model's text into a value (``text``, ``markdown``, ``json``, ``list``, ``regex``)."""

from .base import OutputParser, OutputParserError, get_parser

__all__ = ["OutputParser", "OutputParserError", "get_parser"]
