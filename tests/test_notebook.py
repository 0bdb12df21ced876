"""docs/step_through_lenet.ipynb, executed with nbclient: it trains LeNet-5 briefly and shows the player inline."""
import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "step_through_lenet.ipynb"


@pytest.mark.slow
def test_notebook_runs_and_shows_the_player(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("NO_COLOR", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    trained = re.search(r"300 steps in [\d.]+ s; held-out accuracy ([\d.]+)% on 1,000 digits", text)
    assert trained and float(trained[1]) > 80                # a few hundred steps: far above chance (10%)
    picked = re.search(r"digit #(\d+) is a (\d), predicted (\d); loss ([\d.]+); 27 module steps", text)
    assert picked and picked[2] != picked[3] and float(picked[4]) > 0.1     # a digit it gets wrong
    players = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(players) == 1
    page = players[0]
    assert page.startswith('<div class="tgcv-player" id="tgcv-player-') and 'data-frames="28"' in page
    assert page.count('<section class="frame"') == 28 and page.count("<script>") == 1
    assert page.count('data-kind="maps"') == 12 and page.count('data-kind="grad"') == 13
    assert f"held-out digit #{picked[1]} (a {picked[2]})" in page
    assert "http://" not in page.replace("http://www.w3.org", "")    # nothing fetched from the network
    table = re.findall(r"^(\S+)\s+\(.*\|grad\| = ([\d.e-]+)", text, re.M)
    assert [name for name, _ in table][:2] == ["loss", "classifier.4"] and len(table) == 13
    norms = dict(table)
    assert norms["features.5"] == norms["flatten"] == norms["classifier.0"]   # pooling and flatten keep the norm
