"""The IPython magics: thin layers over the Python API.

Each concern has its own ``Magics`` class; ``register_magics`` adds them all to a shell.
"""

from __future__ import annotations

import importlib

#: (module, class) of every Magics class the extension registers.
MAGICS = (
    ("llm_magics.magics.llm", "LLMCommandMagics"),
    ("llm_magics.magics.ingest", "IngestMagics"),
    ("llm_magics.magics.ask", "AskMagics"),
    ("llm_magics.magics.chain", "ChainMagics"),
    ("llm_magics.magics.attnviz", "AttnvizMagics"),
    ("llm_magics.magics.agent", "AgentMagics"),
    ("llm_magics.magics.finetune", "FinetuneMagics"),
)


def magic_classes():
    for module_name, class_name in MAGICS:
        yield getattr(importlib.import_module(module_name), class_name)


def register_magics(shell) -> list:
    """Instantiate and register every Magics class on ``shell``; returns the instances."""
    from . import transforms

    instances = []
    for cls in magic_classes():
        instance = cls(shell)
        shell.register_magics(instance)
        instances.append(instance)
    transforms.install(shell)  # a one-line %ask may end with "?"
    return instances


def unregister_magics(shell, instances) -> None:
    """Remove what ``register_magics`` added."""
    from . import transforms

    transforms.uninstall(shell)
    manager = shell.magics_manager
    for instance in instances:
        for kind, names in instance.magics.items():
            for name in names:
                manager.magics[kind].pop(name, None)
        manager.registry.pop(type(instance).__name__, None)
