import pytest

from bitnet_model.train.config import SECTIONS, DiagConfig, ModelConfig, RunConfig, TrainConfig, auto_lr, build_config
from bitnet_tui.session.analysis.detector import DetectorConfig
from bitnet_tui.session.errors import ConfigError
from bitnet_tui.session.knobs import knob_argv


def test_hidden_picks_the_shape():
    m = ModelConfig(hidden=256)
    assert (m.layers, m.heads, m.ffn, m.context) == (4, 4, 704, 128)
    big = ModelConfig(hidden=1024)
    assert big.heads == 16 and big.layers == 8 and big.ffn % 64 == 0


def test_auto_lr_is_the_faq_table_not_the_reports():
    # the FAQ: 1.5e-3 for 700M (hidden 1536), 1.2e-3 from 1.3B (hidden 2048); nothing smaller measured there
    assert auto_lr(256) == auto_lr(1536) == 1.5e-3
    assert auto_lr(2048) == 1.2e-3
    cfg = RunConfig(model=ModelConfig(hidden=512))
    assert cfg.train.lr == 1.5e-3 and cfg.lr_auto
    assert not RunConfig(train=TrainConfig(lr=1e-3)).lr_auto


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ModelConfig(hidden=100, heads=3), "hidden (100) must be divisible by heads (3)"),
        (lambda: ModelConfig(hidden=0), "hidden must be between 8 and 16384"),
        (lambda: ModelConfig(hidden=1_000_000), "hidden must be between 8 and 16384"),
        (lambda: ModelConfig(hidden=64, layers=-2), "layers must be between 1 and 256"),
        (lambda: ModelConfig(vocab_size=100), "vocab_size must be between 260"),
        (lambda: ModelConfig(ffn_act="gelu"), "ffn_act must be one of swiglu, relu2"),
        (lambda: TrainConfig(lr=0), "lr must be between"),
        (lambda: TrainConfig(lr=-1e-3), "lr must be between"),
        (lambda: TrainConfig(lr=5e-324), "lr must be between"),
        (lambda: TrainConfig(lr=float("nan")), "lr must be a finite number"),
        (lambda: TrainConfig(lr="fast"), "lr must be a number"),
        (lambda: TrainConfig(steps=0), "steps must be between 1 and"),
        (lambda: TrainConfig(steps=9223372036854775807), "steps must be between 1 and"),
        (lambda: TrainConfig(steps=True), "steps must be a number"),
        (lambda: TrainConfig(seed=-1), "seed must be between 0"),
        (lambda: TrainConfig(schedule="linear"), "schedule must be one of"),
        (lambda: TrainConfig(optimizer="sgd"), "optimizer must be one of adamw, adam"),
        (lambda: TrainConfig(label_smoothing=1.5), "label_smoothing must be between 0 and 1 (exclusive)"),
        (lambda: TrainConfig(grad_clip=-1), "grad_clip must be between 0"),
        (lambda: TrainConfig(steps=100, warmup_steps=100), "warmup (100) must be less than steps (100)"),
        (lambda: TrainConfig(device="cuda:abc"), "device must be auto, cpu, cuda or cuda:N"),
        (lambda: DiagConfig(eval_every=0), "eval_every must be between 1"),
        (lambda: DetectorConfig(collapse_share=0.05, collapsing_share=0.04), "thresholds must satisfy"),
    ],
)
def test_bad_config_raises_one_clear_error(make, message):
    with pytest.raises(ConfigError) as e:
        make()
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_round_trip_through_a_dict():
    cfg = RunConfig(model=ModelConfig(hidden=64, ffn_act="relu2"),
                    train=TrainConfig(lr=1e-3, schedule="cosine", optimizer="adam", decay_all=True),
                    diag=DiagConfig(detector=DetectorConfig(collapse_share=0.01)))
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_a_header_config_with_out_of_range_values_is_refused():
    d = RunConfig().to_dict()
    d["train"]["steps"] = 10**30
    with pytest.raises(ConfigError, match="steps must be between"):
        RunConfig.from_dict(d)


def test_knobs_round_trip_through_argv():
    knobs = {"hidden": 64, "lr": 1.5e-3, "quant": False, "optimizer": "adam", "warmup_steps": 5, "data": None}
    argv = knob_argv(knobs, tuple(SECTIONS.values()))
    assert argv == ["--hidden", "64", "--lr", "0.0015", "--no-quant", "--optimizer", "adam", "--warmup", "5"]


def test_build_config_applies_knobs_and_detector_thresholds():
    cfg = build_config(None, {"hidden": 64, "detector_collapse_share": 0.01, "steps": 10})
    assert cfg.model.hidden == 64 and cfg.diag.detector.collapse_share == 0.01 and cfg.train.steps == 10
    with pytest.raises(ConfigError, match="unknown setting"):
        build_config(None, {"nope": 1})
    # a shorter continuation re-derives its warmup instead of failing on the parent's
    parent = build_config(None, {"steps": 2000})
    assert build_config(parent, {"steps": 30}).train.warmup_steps == 1


def test_precision_auto_is_bf16_where_it_is_native_and_fp32_elsewhere(monkeypatch):
    import torch

    from bitnet_model.nn.device import native_bf16, resolve_precision

    assert resolve_precision("cpu", "fp32") == "fp32" and resolve_precision("cpu", "bf16") == "bf16"
    assert native_bf16("cuda") and resolve_precision("cuda", "auto") == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not native_bf16("cpu") and resolve_precision("cpu", "auto") == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert resolve_precision("cpu", "auto") == "bf16"
