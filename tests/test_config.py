import pytest

from bitnet_model.train.config import ConfigError, DiagConfig, ModelConfig, RunConfig, TrainConfig, peak_lr_for_hidden


def test_hidden_picks_the_shape():
    m = ModelConfig(hidden=256)
    assert (m.layers, m.heads, m.ffn, m.context) == (4, 4, 704, 128)
    big = ModelConfig(hidden=1024)
    assert big.heads == 16 and big.layers == 8 and big.ffn % 64 == 0


def test_peak_lr_for_hidden_is_the_reports_table():
    assert peak_lr_for_hidden(256) == 5e-4
    assert peak_lr_for_hidden(128) == 5e-4
    assert peak_lr_for_hidden(512) == 8e-4
    assert peak_lr_for_hidden(768) == 8e-4
    assert peak_lr_for_hidden(1024) == 1.5e-3


def test_auto_lr_resolves_and_is_recorded():
    cfg = RunConfig(model=ModelConfig(hidden=512))
    assert cfg.train.lr == 8e-4 and cfg.lr_auto
    assert not RunConfig(train=TrainConfig(lr=1e-3)).lr_auto


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ModelConfig(hidden=100, heads=3), "hidden (100) must be divisible by heads (3)"),
        (lambda: ModelConfig(hidden=0), "hidden must be a positive integer"),
        (lambda: ModelConfig(hidden=64, layers=-2), "layers must be a positive integer"),
        (lambda: TrainConfig(lr=0), "lr must be positive"),
        (lambda: TrainConfig(lr=-1e-3), "lr must be positive"),
        (lambda: TrainConfig(lr=float("nan")), "lr must be a finite number"),
        (lambda: TrainConfig(lr="fast"), "lr must be a positive number or 'auto'"),
        (lambda: TrainConfig(steps=0), "steps must be a positive integer"),
        (lambda: TrainConfig(schedule="linear"), "schedule must be one of"),
        (lambda: TrainConfig(label_smoothing=1.5), "label_smoothing must be in [0, 1)"),
        (lambda: TrainConfig(grad_clip=-1), "grad_clip must be >= 0"),
        (lambda: DiagConfig(eval_every=0), "eval_every must be a positive integer"),
        (lambda: DiagConfig(collapse_unique=20, collapsing_unique=10), "thresholds must satisfy"),
    ],
)
def test_bad_config_raises_one_clear_error(make, message):
    with pytest.raises(ConfigError) as e:
        make()
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_round_trip_through_a_dict():
    cfg = RunConfig(model=ModelConfig(hidden=64), train=TrainConfig(lr=1e-3, schedule="cosine"))
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
