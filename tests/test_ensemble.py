"""TemporalEnsembler: the weighted mean of the overlapping chunks' predictions, checked by hand."""

import numpy as np
import pytest

from tinyvla.ensemble import TemporalEnsembler

# Chunks of k=3 actions (2-dim: the second column is minus the first), made at steps 0, 1, 2, 3.
CHUNKS = [np.array([[v, -v] for v in (1, 2, 3)]) * 10.0 ** i for i in range(4)]


def run(coef: float) -> list[float]:
    ens, out = TemporalEnsembler(coef), []
    for chunk in CHUNKS:
        ens.add(chunk)
        action = ens.act()
        assert action[1] == pytest.approx(-action[0])  # each dimension on its own
        out.append(action[0])
    return out


def test_coef_zero_is_the_plain_mean_of_the_overlapping_predictions():
    # step 0: 1; step 1: (2 + 10) / 2; step 2: (3 + 20 + 100) / 3; step 3: chunk 0 has run out: (30 + 200 + 1000) / 3
    assert run(0.0) == pytest.approx([1, 6, 41, 410])


def test_coef_ln2_weighs_older_predictions_1_half_quarter():
    # weights exp(-ln2 * i) = 1, 1/2, 1/4 from the oldest live chunk on
    assert run(np.log(2)) == pytest.approx([1, (2 + 10 / 2) / 1.5, (3 + 20 / 2 + 100 / 4) / 1.75,
                                            (30 + 200 / 2 + 1000 / 4) / 1.75])


def test_act_needs_a_chunk_and_reset_starts_a_new_episode():
    ens = TemporalEnsembler(0.01)
    with pytest.raises(RuntimeError, match="add"):
        ens.act()
    ens.add(CHUNKS[1])
    ens.act()
    ens.reset()
    ens.add(CHUNKS[0])
    assert ens.act()[0] == 1  # the previous episode's chunk is gone
    with pytest.raises(ValueError):
        TemporalEnsembler(-1.0)
