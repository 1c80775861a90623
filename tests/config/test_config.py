"""Config: every field carries its type, range and help; values are checked whenever a config
is built (TOML file, checkpoint dict, flags), with one line naming key, value and what is allowed."""
from dataclasses import fields

import pytest

from crnn_ocr.cli.main import build_parser, config_from_args, main
from crnn_ocr.config.fields import ConfigError
from crnn_ocr.config.schema import Config
from crnn_ocr.config.sections import SECTIONS
from crnn_ocr.training.pretrain import pretrain_config

from conftest import write_tiny_config


@pytest.mark.parametrize("flags, key", [
    (["--batch-size", "0"], "batch_size = 0"), (["--batch-size", "-3"], "batch_size = -3"),
    (["--threads", "-1"], "threads = -1"), (["--width", "8"], "width = 8"), (["--height", "8"], "height = 8"),
    (["--epochs", "0"], "epochs = 0"), (["--train-limit", "-5"], "train_limit = -5"), (["--lr", "inf"], "lr = inf"),
    (["--lr", "nan"], "lr = nan"), (["--epochs", "ten"], "epochs = 'ten'"), (["--dropout", "1"], "dropout = 1.0"),
    (["--channels", "2"], "channels = 2"), (["--backbone", "vgg"], "backbone = 'vgg'"),
    (["--seed", str(2**64)], f"seed = {2**64}"),  # was torch's "Overflow when unpacking long long"
    (["--synthetic-mix", "0.999999"], "synthetic_mix = 0.999999"),  # was a million rendered words per real one
    (["--erase", "-0.5"], "erase = -0.5"),
    (["--cnn-channels", "8", "16", "0", "32", "64"], "cnn_channels = [8, 16, 0, 32, 64]"),
])
def test_bad_flags_are_refused_with_one_line_and_exit_2(tmp_path, capsys, flags, key):
    assert main(["train", "--out", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("crnn-ocr: error: [") and key in err and "must be" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("line, key", [
    ("[data]\nheight = 48.5", "height = 48.5"), ('[train]\nlr = "fast"', "lr = 'fast'"),
    ('[train]\nepochs = "ten"', "epochs = 'ten'"), ("[data]\npath = 5", "path = 5"),
    ('[data]\naugment = "false"', "augment = 'false'"), ("[train]\nlr = inf", "lr = inf"),
    ('[data]\ntrain_ids = "a.txt"', "train_ids = 'a.txt'"), ("[train]\nbatch_size = true", "batch_size = True"),
])
def test_bad_values_in_a_config_file_are_refused_with_one_line(tmp_path, capsys, line, key):
    (tmp_path / "bad.toml").write_text(line + "\n")
    with pytest.raises(ConfigError, match="must be"):
        Config.from_toml(tmp_path / "bad.toml")
    assert main(["train", "--config", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err


def test_other_commands_check_their_numbers(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", "x.pt", "--data", str(tmp_path), "--out", str(tmp_path / "e"),
                 "--batch-size", "-1"]) == 2
    assert "--batch-size -1" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(tmp_path / "p"), "--images", "0"]) == 2
    assert "synthetic_train = 0" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", "x.pt", "--threads", "-1", "a.png"]) == 2
    assert "--threads -1" in capsys.readouterr().err


def test_a_config_file_with_a_byte_order_mark_reads_as_without(tmp_path):
    (tmp_path / "bom.toml").write_bytes("\ufeff[train]\nepochs = 3\n".encode("utf-8"))
    assert Config.from_toml(tmp_path / "bom.toml").train.epochs == 3


def test_unknown_keys_are_an_error_and_missing_ones_take_defaults():
    with pytest.raises(ConfigError, match="unknown key 'epoch' in \\[train\\]"):
        Config.from_dict({"train": {"epoch": 3}})
    old = Config().to_dict()
    del old["model"]["cnn_blocks"], old["data"]["elastic"], old["train"]["ema"]  # a checkpoint older than them
    cfg = Config.from_dict(old)
    assert cfg.model.cnn_blocks == [0, 0, 0, 0, 0] and cfg.data.elastic == 2.5 and cfg.train.ema == 0.0
    # a saved config without the warp was trained without it: resumed, it goes on without it
    assert Config.saved(old).data.elastic == 0.0 and Config.saved(Config().to_dict()).data.elastic == 2.5


def test_whole_numbers_are_taken_where_a_number_is_meant():
    cfg = Config.from_dict({"train": {"lr": 1, "warmup_epochs": 0}})
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)


def test_every_field_is_a_flag_with_help_under_its_own_name():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    by_dest = {a.dest: a for a in train._actions}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            action = by_dest[f"{section}.{f.name}"]
            assert action.help and f.metadata["help"] in action.help
            assert (f.metadata["flag"] or "--" + f.name.replace("_", "-")) in action.option_strings


def test_flags_land_in_their_fields_and_old_spellings_still_work(tmp_path):
    config = write_tiny_config(tmp_path / "tiny.toml")
    args = build_parser().parse_args(["train", "--config", str(config), "--no-augment", "--no-amp", "--keep-err",
                                      "--data", "d", "--train-ids", "a", "b", "--lr", "2e-3", "--images", "7"])
    cfg = config_from_args(args)
    assert (cfg.data.augment, cfg.train.amp, cfg.data.keep_err) == (False, False, True)
    assert cfg.data.path == "d" and cfg.data.train_ids == ["a", "b"] and cfg.train.lr == 2e-3
    assert cfg.data.synthetic_train == 7 and cfg.data.height == 32  # the file's value where no flag is given


def test_pretraining_is_a_preset_with_its_own_warm_up():
    cfg = pretrain_config()
    assert cfg == Config.preset("pretrain") and cfg.data.path == "synth:words" and cfg.model.backbone == "resnet18"
    assert pretrain_config(epochs=3, images=100).train.warmup_epochs == pytest.approx(0.3)
    assert pretrain_config(epochs=3, warmup_epochs=2).train.warmup_epochs == 2
    with pytest.raises(ConfigError, match="synthetic_train = 0"):
        pretrain_config(images=0)


def test_width_pool_8_is_refused_for_the_resnet18_backbone_before_any_data_is_read():
    with pytest.raises(ConfigError, match="reduces the width by 4 only"):
        Config.from_dict({"model": {"backbone": "resnet18", "width_pool": 8}})
    assert Config.from_dict({"model": {"width_pool": 8}}).model.width_pool == 8


def test_a_saved_config_without_a_newer_setting_reads_as_before_it_existed():
    old = Config().to_dict()
    del old["data"]["auto_levels"]
    assert Config().data.auto_levels  # new runs: on
    assert not Config.saved(old).data.auto_levels and Config.from_dict(old).data.auto_levels
    assert Config.saved(Config().to_dict()).data.auto_levels  # saved with it: as saved


def test_a_synthetic_word_list_is_read_beside_its_config_and_the_font_share_is_checked(tmp_path):
    (tmp_path / "run.toml").write_text('[data]\npath = "synth:words"\nsynthetic_words = "lists/words.txt"\n'
                                       "synthetic_handwriting = 1.0\n")
    cfg = Config.from_toml(tmp_path / "run.toml")
    assert cfg.data.synthetic_words == str(tmp_path / "lists" / "words.txt") and cfg.data.synthetic_handwriting == 1.0
    (tmp_path / "bad.toml").write_text("[data]\nsynthetic_handwriting = 1.5\n")
    with pytest.raises(ConfigError, match="synthetic_handwriting"):
        Config.from_toml(tmp_path / "bad.toml")


def test_a_config_can_start_from_a_base_file_and_replace_some_of_its_keys(tmp_path):
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "base.toml").write_text('[data]\npath = "../data"\nheight = 48\nwidth = 192\n'
                                                   "[train]\nepochs = 4\nlr = 0.002\n")
    (tmp_path / "arm.toml").write_text('base = "common/base.toml"\n[data]\nwidth = 256\n'
                                       "[model]\nctc_shortcut = 0.1\n")
    cfg = Config.from_toml(tmp_path / "arm.toml")
    assert cfg.data.path == str(tmp_path / "data")  # relative to the file that says it
    assert (cfg.data.height, cfg.data.width, cfg.model.ctc_shortcut) == (48, 256, 0.1)
    assert (cfg.train.epochs, cfg.train.lr) == (4, 0.002)
    (tmp_path / "arm2.toml").write_text('base = "arm.toml"\n[train]\nepochs = 2\n')  # a chain
    cfg = Config.from_toml(tmp_path / "arm2.toml")
    assert (cfg.data.width, cfg.train.epochs, cfg.train.lr) == (256, 2, 0.002)
    (tmp_path / "unknown.toml").write_text('base = "arm.toml"\n[model]\nwidht = 3\n')  # still checked
    with pytest.raises(ConfigError, match="widht"):
        Config.from_toml(tmp_path / "unknown.toml")


def test_a_pretrained_start_is_a_path_beside_the_config_unless_it_is_a_model_name(tmp_path):
    def start(value: str) -> str:
        (tmp_path / "c.toml").write_text(f'[model]\npretrained = "{value}"\n')
        return Config.from_toml(tmp_path / "c.toml").model.pretrained

    assert start("synth-words") == "synth-words"  # bundled
    assert start("synth-wrods") == "synth-wrods"  # misspelt: reported as an unknown model, not as a path
    assert start("runs/best.pt") == str(tmp_path / "runs" / "best.pt")
    (tmp_path / "mine").write_bytes(b"")
    assert start("mine") == str(tmp_path / "mine")  # a file of that name beside the config is a path


@pytest.mark.parametrize("files, message", [
    ({"a.toml": 'base = "a.toml"\n'}, "leads back to itself"),
    ({"a.toml": 'base = "b.toml"\n', "b.toml": 'base = "a.toml"\n'}, "leads back to itself"),
    ({"a.toml": 'base = "missing.toml"\n'}, "missing.toml"),
    ({"a.toml": "base = 3\n"}, "base must name another config file"),
])
def test_a_bad_base_is_a_one_line_error(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        Config.from_toml(tmp_path / "a.toml")


def test_the_demo_preset_trains_synthetic_captchas_from_scratch_on_a_slim_network():
    cfg = Config.preset("demo").validate()
    assert cfg.data.path == "" and cfg.model.pretrained == "none"  # synthetic captchas, no start weights
    assert cfg.model.rnn_hidden < Config().model.rnn_hidden and cfg.model.width_pool == 8
    assert cfg.model.ctc_shortcut > 0 and not cfg.data.augment and cfg.data.elastic == 0
