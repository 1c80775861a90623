"""experiments/run.py's table: sorted rows beside the report's numbers, refreshed in the README."""
import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("run", Path(__file__).resolve().parents[1] / "experiments" / "run.py")
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)

ROWS = [{"config": "iam_b", "dataset": "iam", "backbone": "simple", "pretrained": False, "train_seconds": 600,
         "img_per_s": 100.0, "test": {"word_accuracy": 0.5, "cer": 0.2, "bleu": 60.0}, "test_location": "val",
         "test_lexicon": {"word_accuracy": 0.6}},
        {"config": "captcha_a", "dataset": "captcha", "backbone": "resnet18", "pretrained": True, "train_seconds": 60,
         "img_per_s": 40.0}]


def test_table_rows_are_sorted_and_carry_the_report_numbers():
    lines = run.markdown(ROWS).splitlines()
    assert lines[2].startswith("| captcha_a | resnet18 | yes | - | - | - | - | - | 53.27 / 88.00 | 1.0 min | 40 |")
    assert lines[3] == ("| iam_b | simple | no | val | 50.00 | 20.00 | 60.00 | 60.00 | 19.00 / 41.13 "
                        "| 10.0 min | 100 |")


def test_results_table_is_replaced_between_the_markers_only(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold table\n<!-- results:end -->\nafter\n")
    run.update_page(readme, "| new |\n")
    assert readme.read_text() == "intro\n<!-- results:start -->\n| new |\n<!-- results:end -->\nafter\n"
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    run.update_page(plain, "| new |\n")
    assert plain.read_text() == "no markers\n" and "markers; not updated" in capsys.readouterr().out


def test_time_to_accuracy_is_the_training_time_until_each_threshold_is_first_reached():
    history = [{"seconds": 60, "val_cer": 0.30, "val_word_accuracy": 0.90},
               {"seconds": 60, "val_cer": 0.14, "val_word_accuracy": 0.96},
               {"seconds": 60, "val_cer": 0.16, "val_word_accuracy": 0.94},
               {"seconds": 60, "val_cer": 0.095, "val_word_accuracy": 0.995}]
    assert run.time_to(history, "iam") == {"CER<=20%": 120, "CER<=15%": 120, "CER<=12%": 240, "CER<=10%": 240,
                                           "CER<=8%": None}
    assert run.time_to(history, "captcha") == {"acc>=95%": 120, "acc>=99%": 240}


def test_ablation_table_shows_each_runs_options_and_times():
    row = {"config": "iam_x", "dataset": "iam", "train_seconds": 600, "val_word_accuracy": 0.5, "val_cer": 0.2,
           "options": {"height": 48, "column_pool": "max", "ctc_shortcut": 0.1, "cnn_blocks": 0,
                       "pretrained": "", "train_images": 1750, "seed": 0},
           "time_to": {"CER<=20%": 300.0, "CER<=15%": None}}
    mixed = row | {"config": "iam_y", "epochs_run": 30, "best_epoch": 27, "test_location": "iam_words (val1.txt)",
                   "test": {"word_accuracy": 0.6, "cer": 0.1},
                   "options": row["options"] | {"synthetic_mix": 0.3}}  # older rows have no synthetic_mix
    lines = run.ablation_markdown([row, mixed]).splitlines()
    assert lines[0] == "### iam"
    assert lines[4] == ("| iam_x | 1750 | - | 48 | max | 0.1 | - | - | - | 0 | - | its training validation | 50.00 "
                        "| 20.00 | - | 10.0 | 5.0 | - |")
    assert lines[5].startswith("| iam_y | 1750 | 0.3 | 48 | max | 0.1 | - | - | - | 0 | 30 (27) "
                               "| iam_words (val1.txt) | 60.00 | 10.00 |")
    assert lines[2].count("|") == lines[3].count("|") == lines[4].count("|")
    coarse = row | {"options": row["options"] | {"shortcut_pool": 2}}
    assert "| 0.1 (columns pooled by 2) |" in run.ablation_markdown([coarse])
    occluded = row | {"options": row["options"] | {"dropout": 0.5, "lr": 0.001, "erase": 0.5}}
    assert "| - | dropout 0.5, lr 0.001, erase 0.5 | 0 |" in run.ablation_markdown([occluded])
    wide = row | {"options": row["options"] | {"width_pool": 8}}
    assert "| 48 | max, 1 per 8 px |" in run.ablation_markdown([wide])


def test_captcha_minute_reports_each_seed_and_refuses_a_pretrained_start(tmp_path, monkeypatch):
    import json
    import sys

    import pytest
    from conftest import write_tiny_config

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "experiments"))
    import captcha_minute

    config = write_tiny_config(tmp_path / "tiny.toml", train=16, val=8, small_model=True)
    out = tmp_path / "results"
    monkeypatch.setattr(sys, "argv", ["captcha_minute.py", str(config), "--seeds", "0", "1", "--threads", "1",
                                      "--runs", str(tmp_path / "runs"), "--out", str(out)])
    captcha_minute.main()
    result = json.loads((out / "captcha_minute.json").read_text())
    assert [r["seed"] for r in result["runs"]] == [0, 1] and result["threads"] == 1
    assert all(r["epochs"] == 1 and r["acc>=99%"] is None for r in result["runs"])  # one epoch reads nothing yet
    rows = (out / "captcha_minute.md").read_text().splitlines()[4:]
    assert [row.split(" | ")[3] for row in rows] == ["no", "no"]

    pretrained = tmp_path / "pretrained.toml"
    pretrained.write_text(config.read_text().replace('pretrained = ""', 'pretrained = "synth-words"'))
    monkeypatch.setattr(sys, "argv", ["captcha_minute.py", str(pretrained), "--out", str(out)])
    with pytest.raises(SystemExit, match="from scratch"):
        captcha_minute.main()


def test_test_time_views_score_every_combination(tmp_path, iam_root, monkeypatch):
    import json
    import sys

    import torch

    from crnn_ocr import CRNN, Charset, Config

    from crnn_ocr.model import checkpoint

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "experiments"))
    import tta

    # A vertical bar sheared by s pixels per pixel of height: its top row moves s * h / 2 pixels
    # right of the middle, its bottom row as far left (a forward slant); shear 0 changes nothing.
    bar = torch.ones(1, 1, 20, 40)
    bar[..., 19:21] = 0
    assert torch.allclose(tta.slanted(bar, 0.0), bar, atol=1e-5)
    sheared = tta.slanted(bar, 0.2)
    top, bottom = sheared[0, 0, 0].argmin().item(), sheared[0, 0, -1].argmin().item()
    assert top > bottom and abs((top - bottom) - 0.2 * 19) <= 1.5

    cfg = Config()
    cfg.model.rnn_hidden, cfg.model.rnn_layers = 16, 1
    charset = Charset("AEMOPVers")
    torch.manual_seed(0)
    ckpt = tmp_path / "model.pt"
    checkpoint.save({"model": CRNN.from_config(cfg, charset).state_dict(), "config": cfg.to_dict(),
                     "charset": charset.chars, "epoch": 0}, ckpt)
    ids = tmp_path / "ids.txt"
    ids.write_text("a01-000u-00-00\na01-000u-00-01\nb02-010-01-00\n")
    out = tmp_path / "tta.json"
    monkeypatch.setattr(sys, "argv", ["tta.py", "--checkpoint", str(ckpt), "--iam", str(iam_root), "--ids", str(ids),
                                      "--views", "image", "thin", "--also", str(ckpt), "--out", str(out)])
    tta.main()
    result = json.loads(out.read_text())
    rows = {tuple(r["views"]): r for r in result["views"]}
    assert list(rows) == [("image",), ("image", "thin"), ("image", "model.pt"), ("image", "thin", "model.pt")]
    assert result["n"] == 3 and set(result["ms_per_word"]) == {"image", "thin", "model.pt"}
    # the model averaged with itself reads exactly as it does alone
    assert rows[("image", "model.pt")]["cer"] == rows[("image",)]["cer"]
