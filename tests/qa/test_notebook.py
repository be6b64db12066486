"""A real kernel (nbclient): %load_ext, %ingest real files, then %%ask with every chain type."""

from __future__ import annotations

import json
import shutil

import pytest

from llm_magics.demo import DATA

pytestmark = pytest.mark.slow

CHAIN_TYPES = ["stuff", "refine", "map_reduce", "map_rerank"]


def test_ingest_then_ask_with_each_chain_type_in_a_kernel(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    for name in ("handbook.md", "safety.pdf"):
        shutil.copy(DATA / name, tmp_path / name)
    cells = [
        "%load_ext llm_magics",
        "%config LLMMagics.max_tokens = 32",
        "%ingest handbook.md safety.pdf --collection nbdocs --chunk-size 400 --chunk-overlap 50",
    ]
    for ct in CHAIN_TYPES:
        cells.append(f"%%ask --collection nbdocs --k 3 --chain-type {ct} --no-history -o a_{ct}\nWho gives the laser safety training?")
    cells.append(
        "import json\nprint(json.dumps({ct: {'raw': a.raw, 'grounded': a.grounded, 'sources': [s.source for s in a.sources],"
        " 'pages': [s.page for s in a.sources], 'cited': [s.source for s in a.cited]} for ct, a in"
        " [(c, globals()['a_' + c]) for c in %r]}))" % CHAIN_TYPES
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    for cell in nb.cells:
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.outputs
    ask_cells = nb.cells[3:7]
    for ct, cell in zip(CHAIN_TYPES, ask_cells):
        results = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert results, (ct, cell.outputs)
        md = results[0]["data"]["text/markdown"]
        assert "[1]" in md and "safety.pdf, p. 2" in md, (ct, md)
        # the streamed display was created and then cleared: the answer shows once, as the result
        assert any(o.output_type == "display_data" for o in cell.outputs)
    summary = json.loads(nb.cells[-1].outputs[0]["text"])
    for ct in CHAIN_TYPES:
        got = summary[ct]
        assert got["raw"].strip(), (ct, got)
        assert got["sources"][0].endswith("safety.pdf") and got["pages"][0] == 2, (ct, got)
        if got["grounded"]:
            assert any(s.endswith("safety.pdf") for s in got["cited"]), (ct, got)
