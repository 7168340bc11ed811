"""The capacity figures as figure functions: readable model names, legends by size (h8 before
h12), a Figure drawn into given axes, nothing written."""

from __future__ import annotations

from matplotlib.figure import Figure

from grammarlab.capacity.analysis import analyse
from grammarlab.capacity.plot import model_label, plot_memorized, plot_vs_ratio
from tests.capacity.fake_records import fake


def test_model_label():
    assert model_label("pythia-tiny-h12-l1-a2-i48") == "Pythia, hidden 12, 1 layer, 2 heads, MLP 48"
    assert model_label("llama-tiny-h8-l2-a1-i32", 2220) == (
        "Llama, hidden 8, 2 layers, 1 head, MLP 32 (2,220 params)"
    )
    assert model_label("m0") == "m0"  # another form of id is kept


def test_legend_sorted_by_size_not_as_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recs = [fake(f"pythia-tiny-h{h}-l1-a2-i{4 * h}", "gpt_neox", 100 * h, 50.0 * h, n, s)
            for h in (12, 24, 8, 16) for s in (0, 1) for n in (4, 64)]  # fmt: skip
    t = analyse(recs)
    fig = plot_memorized(t["runs"], t["capacity"])
    texts = [x.get_text() for x in fig.legends[0].get_texts()]
    hidden = [int(s.split("hidden ")[1].split(",")[0]) for s in texts if "hidden" in s]
    assert hidden == [8, 12, 16, 24]
    # into given axes (one per dtype): the caller's figure comes back
    mine = Figure()
    (ax,) = [mine.add_subplot()]
    out = plot_vs_ratio(t["ratio"], "auc", "AUC", chance=True, axes=[ax])
    assert out is mine and len(ax.lines) == 4 + 2  # 4 models, ratio 1, chance
    assert not list(tmp_path.iterdir())
