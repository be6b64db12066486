"""Question answering over an ``Index``: ``ask`` and what it returns.

``pipeline.py`` defines ``ask`` (retrieve, chain type, parse, support check, memory);
``answer.py`` the ``Answer`` and ``Source`` it returns, with their notebook views;
``chain_types/`` the LangChain-style ``stuff``/``refine``/``map_reduce``/``map_rerank``;
``memory.py`` the conversation memories; ``parsers/`` the output parsers;
``callbacks/`` the callback handlers; ``support.py`` whether an answer comes from its sources.
"""
