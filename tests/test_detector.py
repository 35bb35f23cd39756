"""The collapse detector on the report's own unique-token sequences, and with loss context."""

from bitnet_model.analysis.detector import CollapseDetector
from bitnet_model.train.config import DiagConfig

LN_V, UNIGRAM = 8.3, 6.5


def run(seq, losses=None):
    d = CollapseDetector(DiagConfig(), LN_V, UNIGRAM)
    states, alerts = [], []
    for i, u in enumerate(seq):
        a = d.observe(i * 1000, u, None if losses is None else losses[i], (("the", 3),), "the the the")
        states.append(d.state)
        if a is not None:
            alerts.append(a)
    return states, alerts


def test_standard_lr_ends_collapsed():
    states, alerts = run([20, 19, 9, 4, 2, 2])
    assert states == ["healthy", "healthy", "collapsing", "collapsed", "collapsed", "collapsed"]
    assert [a.state_to for a in alerts] == ["healthy", "collapsing", "collapsed"]
    last = alerts[-1]
    assert last.step == 3000 and last.unique_tokens == 4 and last.level == "error"
    assert last.top_tokens == (("the", 3),) and last.sample == "the the the"


def test_reduced_lr_collapses_then_recovers():
    states, alerts = run([20, 3, 10, 14, 18])
    assert states == ["healthy", "collapsed", "recovering", "recovering", "recovered"]
    assert [(a.state_from, a.state_to) for a in alerts][1:] == [
        ("healthy", "collapsed"), ("collapsed", "recovering"), ("recovering", "recovered")]


def test_loss_near_ln_vocab_is_not_learning_not_collapse():
    states, _ = run([3, 2, 2], losses=[8.3, 8.2, 8.0])
    assert states == ["not_learning"] * 3


def test_unigram_phase_is_normal_then_collapse_counts_once_learned():
    states, _ = run([8, 8, 40, 3], losses=[8.3, 6.5, 5.0, 4.5])
    assert states == ["not_learning", "unigram", "healthy", "collapsed"]


def test_leaving_the_unigram_phase_is_not_a_collapse():
    # the loss drops below the unigram entropy a few evals before diversity catches up
    states, alerts = run([1, 3, 5, 9, 15, 22, 4], losses=[7.0, 6.0, 5.7, 5.5, 5.3, 5.1, 4.9])
    assert states == ["unigram", "unigram", "unigram", "unigram", "healthy", "healthy", "collapsed"]
    assert not any(a.state_to in ("collapsing", "collapsed") for a in alerts[:-1])


def test_learned_but_never_diverse_is_a_stuck_unigram_phase():
    d = CollapseDetector(DiagConfig(stuck_evals=4), LN_V, UNIGRAM)
    alerts = [d.observe(i, 2, 4.0) for i in range(6)]
    assert d.state == "unigram"
    assert sum(1 for a in alerts if a is not None and "still in the unigram phase" in a.message) == 1


def test_a_long_unigram_phase_warns_once():
    d = CollapseDetector(DiagConfig(stuck_evals=3), LN_V, UNIGRAM)
    alerts = [d.observe(i, 4, 6.6) for i in range(6)]
    stuck = [a for a in alerts if a is not None and "still in the unigram phase" in a.message]
    assert len(stuck) == 1 and stuck[0].level == "warning"
