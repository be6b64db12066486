"""Anywidget views: attention (head, model, matrix, neuron), grounding and retrieval.

The JavaScript lives in ``js/`` as plain ES modules with no dependencies, so the views
work offline in JupyterLab, Notebook 7, VS Code and Colab. Arrays travel as bytes.
"""

from .attention import AttentionData, AttentionWidget
from .gates import GatesWidget
from .grounding import Grounding
from .grounding_view import GroundingWidget
from .retrieval import RetrievalWidget

__all__ = ["AttentionWidget", "AttentionData", "GatesWidget", "GroundingWidget", "Grounding", "RetrievalWidget"]
