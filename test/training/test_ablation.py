import cv2

from ivif_ros.core.synthetic import synthetic_pair
from ivif_ros.training.ablation import main, run_ablation

PEER_TABLE = """## toy
| method | EI | CE↓ | SF | EN | Qabf | SCD | Nabf↓ | MI | SD | DF | VIFF | mean rank |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
| peer | 1.0 | 9.0 | 1.0 | 1.0 | 0.1 | 0.1 | 0.9 | 0.1 | 1.0 | 0.1 | 0.1 | 1.00 |
"""


def _dataset(root):
    for index in range(2):
        ir, vis = synthetic_pair(96, 128, seed=index)
        (root / "toy" / "ir").mkdir(parents=True, exist_ok=True)
        (root / "toy" / "vis").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "toy" / "ir" / f"{index}.png"), ir)
        cv2.imwrite(str(root / "toy" / "vis" / f"{index}.png"), vis)
    return root


def test_levers_change_the_output_and_are_scored(tmp_path):
    data = _dataset(tmp_path)
    levers = {"default": {}, "no stretch": {"output_stretch": 0.0}}
    results = run_ablation(data, ["toy"], levers, {}, workers=1)
    rows = results["toy"]
    assert set(rows) == {"default", "no stretch"} and rows["default"]["pairs"] == 2
    assert rows["default"]["SD"] != rows["no stretch"]["SD"]  # the lever really changes the fusion
    assert rows["default"]["ms"] > 0


def test_main_writes_ranked_markdown(tmp_path, monkeypatch):
    data = _dataset(tmp_path)
    (tmp_path / "peers.md").write_text(PEER_TABLE)
    import ivif_ros.training.ablation as ablation

    monkeypatch.setattr(ablation, "LEVERS", {"default": {}, "gain": {"detail_gain": 1.5}})
    out = tmp_path / "ablation.md"
    bench = tmp_path / "BENCH.md"
    bench.write_text("# B\n\n## Speed\n\nkept\n")
    code = main(["--data", str(data), "--sets", "toy", "--workers", "1", "--benchmarks-md", str(bench),
                 "--reference-table", str(tmp_path / "peers.md"), "--out", str(out)])
    text = out.read_text()
    assert "## Speed\n\nkept" in bench.read_text() and "## Ablation" in bench.read_text()
    assert code == 0 and "### toy (2 pairs)" in text and "| gain |" in text and "%" in text
    assert "Best peer row with the default added: peer" in text
    assert "| retention | ms/pair |" in text


def test_missing_dataset_is_reported(tmp_path, capsys):
    assert main(["--data", str(tmp_path), "--sets", "msrs", "--out", str(tmp_path / "x.md")]) == 1
    assert "no dataset" in capsys.readouterr().err
